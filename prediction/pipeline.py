"""The forecast job as named PTransforms: read tails -> windows -> RunInference -> Parquet -> commit.

    files ─ReadTails─▶ (series, tail of a batch) ─CombineTails─▶ (series, last K rows)
          ─MakeWindows─▶ windows ─Batch, ToBlocks─▶ blocks ─RunInference(export)─▶ forecasts
          └─────────────▶ skipped (series, reason)
    forecasts, skipped ─WriteParquet─▶ staged files ─CommitPredictions─▶ output + predictions.json

Only each series' last K rows (K = look-back, plus the forward-fill reach) pass the shuffle,
never every row. Blocks of windows are arrays; the model is loaded once per worker process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections import Counter

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from contract.manifest import Manifest
from contract.series_scaling import SeriesScaling
from evaluation import metrics as fm
from evaluation import report as er
from prediction import score, tails
from prediction.inference import Block, ExportModelHandler, as_rows
from prediction.options import PredictConfig
from preprocessing import output, readers
from preprocessing.errors import InputError, SpecError
from preprocessing.options import JobConfig
from preprocessing.pipeline import PlanUnits, ReadTables
from preprocessing.plan import Plan
from preprocessing.split import parse_time
from preprocessing.transforms import KeyByUnitFn, SumCountsFn, load_unit, merge_into_first

log = logging.getLogger(__name__)
NAMESPACE = "seqscale_predict"
RESULT_NAME = "predictions.json"
FORMAT_VERSION = 1


def tail_rows(cfg: JobConfig) -> int:
    """Rows kept per series: the window, plus the rows a forward fill may reach back to."""
    return cfg.look_back + (cfg.ffill_limit if cfg.nan_policy == "ffill" else 0)


class ReadTailsFn(beam.DoFn):
    """(file index, path) -> (series, Tail) per input batch; counts rows read and dropped."""

    COUNTS = "counts"

    def __init__(self, cfg: JobConfig, paths: list[str], time_kind: str) -> None:
        self.cfg, self.paths, self.time_kind = cfg, paths, time_kind
        self.rows_read = Metrics.counter(NAMESPACE, "rows_read")

    def process(self, element):
        index, path = element
        counts: Counter = Counter()
        offset, k = 0, tail_rows(self.cfg)
        ncols = len(self.cfg.file_columns)
        for batch in readers.raw_batches(path, self.cfg):
            if batch.num_rows == 0:
                continue
            table, kind = readers.normalize(batch, path=path, file_index=index, first_row=offset, cfg=self.cfg)
            if kind != self.time_kind:
                raise InputError(f"{path}: time column {self.cfg.time_column!r} holds {kind} values, but the "
                                 f"model was trained on {self.time_kind} times; give the times as the training "
                                 "data had them")
            offset += batch.num_rows
            table, dropped = readers.apply_nan_policy(table, paths=self.paths, cfg=self.cfg)
            counts["rows_dropped.nan_or_inf"] += dropped
            if not table.num_rows:
                continue
            if self.cfg.series_column:
                enc = table.column("series").combine_chunks().dictionary_encode()
                codes, names = enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist()
            else:
                codes, names = np.zeros(table.num_rows, np.int32), [""]
            for code, tail in tails.batch_tails(codes, table.column("time").to_numpy(),
                                                table.column("file").to_numpy(), table.column("row").to_numpy(),
                                                readers.values_of(table, ncols), k):
                yield str(names[code]), tail
        self.rows_read.inc(offset)
        counts["rows_read"] += offset
        if offset == 0:
            counts["empty_files"] += 1
            log.warning("%s has no data rows", path)
        yield beam.pvalue.TaggedOutput(self.COUNTS, counts)


class CombineTailsFn(beam.CombineFn):
    """A series' tails -> its last K rows (tails.merge: exact in any order)."""

    def __init__(self, k: int, duplicates: str, paths: list[str]) -> None:
        self.k, self.duplicates, self.paths = k, duplicates, paths

    def create_accumulator(self):
        return []

    def add_input(self, acc, tail):
        acc.append(tail)
        return self._compact(acc) if len(acc) >= 16 else acc

    def merge_accumulators(self, accs):
        return self._compact([t for a in accs for t in a])

    def _compact(self, acc):
        # The series name is not known here: repeated times are kept and resolved (or
        # reported, naming the series) by MakeWindowFn.
        return [tails.merge(acc, self.k, duplicates="keep", paths=self.paths, series="")] if acc else []

    def extract_output(self, acc):
        return acc


class MakeWindowFn(beam.DoFn):
    """(series, tails) -> (series, Window), or a `skipped` (series, reason, rows) with its reason."""

    SKIPPED = "skipped"

    def __init__(self, cfg: JobConfig, m: Manifest, paths: list[str], known: frozenset[str] | None) -> None:
        self.cfg, self.m, self.paths, self.known = cfg, m, paths, known
        self.skipped = Metrics.counter(NAMESPACE, "series_skipped")
        self.windows = Metrics.counter(NAMESPACE, "series_forecast")

    def process(self, element):
        series, acc = element
        tail = tails.merge(acc, tail_rows(self.cfg), duplicates=self.cfg.duplicates, paths=self.paths, series=series)
        if self.known is not None and series not in self.known:
            reason = tails.UNKNOWN
        else:
            w = tails.forecast_window(tail, look_back=self.cfg.look_back, max_gap=self.m.max_gap,
                                      nan_policy=self.cfg.nan_policy, ffill_limit=self.cfg.ffill_limit,
                                      columns=self.cfg.file_columns, paths=self.paths)
            if isinstance(w, tails.Window):
                self.windows.inc()
                yield series, w
                return
            reason = w
        self.skipped.inc()
        last = int(tail.time[-1]) if len(tail) else None
        yield beam.pvalue.TaggedOutput(self.SKIPPED, (series, reason, len(tail), last))


def to_block(items: list, positions: list[int], calendar: bool) -> Block:
    """A batch of (series, Window) -> one Block: the model's input columns as float32 arrays."""
    values = np.stack([w.values for _, w in items])
    times = np.stack([w.time for _, w in items])
    with np.errstate(over="ignore"):  # forecast_window refused values beyond float32
        x = np.ascontiguousarray(values[:, :, positions], dtype=np.float32)
    return Block(series=np.array([s for s, _ in items], dtype=object), origin=times[:, -1].copy(), x=x,
                 time=times if calendar else None)


def quantile_column(level: float) -> str:
    return f"q{level:g}"  # q0.1, q0.5, q0.9: GluonTS/NeuralForecast-style, one column per level


def forecast_table(block: Block, outputs: dict, m: Manifest, levels: tuple[float, ...] = ()) -> pa.Table:
    """Long format: one row per series, step and target (a column per quantile level of a quantile
    model; actual beside it in score mode)."""
    p = as_rows(np.asarray(outputs["predictions"], np.float64))
    b, rows, k = p.shape
    distances = np.asarray(m.window.target_distances, np.int64)
    origin = np.repeat(block.origin, rows * k)
    step = np.tile(np.repeat(distances, k), b)
    tkind = pa.timestamp("ns") if m.time_kind == "timestamp" else pa.int64()
    columns = {
        "series": pa.array(np.repeat(block.series, rows * k).astype(str)),
        "origin_time": pa.array(origin, pa.int64()).cast(tkind),
        "step": pa.array(step, pa.int32()),
        "target_time": pa.array(origin + step * m.step, pa.int64()).cast(tkind),
        "target": pa.array(np.tile(np.array(m.targets, dtype=object), b * rows).astype(str)),
        "forecast": pa.array(p.reshape(-1)),
    }
    if levels:
        q = np.asarray(outputs["quantiles"], np.float64).reshape(b * rows * k, len(levels))
        for j, level in enumerate(levels):
            columns[quantile_column(level)] = pa.array(q[:, j])
    if block.actual is not None:
        columns["actual"] = pa.array(as_rows(block.actual).reshape(-1))
    return pa.table(columns)


def skipped_table(items: list, m: Manifest) -> pa.Table:
    tkind = pa.timestamp("ns") if m.time_kind == "timestamp" else pa.int64()
    return pa.table({
        "series": pa.array([s for s, *_ in items], pa.string()),
        "reason": pa.array([r for _, r, *_ in items], pa.string()),
        "rows_seen": pa.array([n for _, _, n, _ in items], pa.int64()),
        "last_time": pa.array([t for *_, t in items], pa.int64()).cast(tkind),
    })


class WriteParquetFn(beam.DoFn):
    """pa.Tables -> one Parquet file per bundle in the staging area; yields (kind, path, rows).

    No fixed file count: the runner's bundles decide. A retried bundle writes a new file and
    only reported files are committed, so a failed attempt's file is never seen.
    """

    def __init__(self, directory: str, kind: str) -> None:
        self.directory, self.kind = directory, kind

    def start_bundle(self):
        self.writer = self.handle = None
        self.rows = 0

    def process(self, table: pa.Table):
        if self.writer is None:
            self.path = FileSystems.join(self.directory, f"{self.kind}-{uuid.uuid4().hex[:16]}.parquet")
            self.handle = FileSystems.create(self.path)
            self.writer = pq.ParquetWriter(self.handle, table.schema)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def finish_bundle(self):
        if self.writer is not None:
            self.writer.close()
            self.handle.close()
            yield WindowedValue((self.kind, self.path, self.rows), MIN_TIMESTAMP, [GlobalWindow()])


class CommitFn(beam.DoFn):
    """Move the written files into the output and write predictions.json last (atomic)."""

    def __init__(self, cfg: PredictConfig, m: Manifest, staging: str, export_info: dict, paths: list[str],
                 range_info: dict | None = None) -> None:
        self.cfg, self.m, self.staging, self.export_info, self.paths = cfg, m, staging, export_info, paths
        self.range_info = range_info  # score mode: the scored range, as predictions.json names it

    def process(self, _, files, counts, skipped, forecast, report=None):
        moves, rows, names = [], Counter(), Counter()
        for kind, path, n in sorted(files):
            names[kind] += 1
            moves.append((path, f"{kind}-{names[kind]:05d}.parquet"))
            rows[kind] += n
        result = {
            "format_version": FORMAT_VERSION,
            "mode": self.cfg.mode,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "export": self.export_info,
            "input": self.paths,
            "look_back": self.m.window.look_back,
            "horizon": self.m.window.horizon,
            "target_sequence": self.m.window.target_sequence,
            "targets": list(self.m.targets),
            "counts": {**dict(sorted(counts.items())), "forecast_rows": int(rows["forecasts"]),
                       **({"series_forecast": int(forecast), "series_skipped": int(sum(skipped.values()))}
                          if self.cfg.mode == "forecast" else {"windows_scored": int(forecast)})},
            **({"skipped": dict(sorted(skipped.items()))} if self.cfg.mode == "forecast" else {}),
            "files": {"forecasts": [n for _, n in moves if n.startswith("forecasts")],
                      "skipped": [n for _, n in moves if n.startswith("skipped")]},
        }
        if report is not None:
            result["range"] = self.range_info
            result["report"] = report
        output.commit(self.cfg.output, self.staging, moves, json.dumps(result, indent=2), marker=RESULT_NAME)
        yield result


def export_identity(export_dir: str, manifest_text: str) -> dict:
    return {"path": export_dir, "manifest_sha256": hashlib.sha256(manifest_text.encode()).hexdigest()}


def build(p: beam.Pipeline, cfg: PredictConfig, reading: JobConfig, m: Manifest, paths: list[str], staging: str,
          export_info: dict, series: SeriesScaling | None, levels: tuple[float, ...] = ()):
    """The forecast pipeline on `p`; returns the PCollection of the committed result."""
    known = frozenset(series.names) if series is not None else None
    positions = [reading.file_columns.index(c) for c in m.file_features]
    read = (p
            | "ListFiles" >> beam.Create(list(enumerate(paths)))
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadTails" >> beam.ParDo(ReadTailsFn(reading, paths, m.time_kind)).with_outputs(
                ReadTailsFn.COUNTS, main="tails"))
    made = (read.tails
            | "CombineTails" >> beam.CombinePerKey(CombineTailsFn(tail_rows(reading), reading.duplicates, paths))
            | "MakeWindows" >> beam.ParDo(MakeWindowFn(reading, m, paths, known)).with_outputs(
                MakeWindowFn.SKIPPED, main="windows"))
    files_dir = FileSystems.join(staging, "files")
    forecasts = (made.windows
                 | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=cfg.batch_size)
                 | "ToBlocks" >> beam.Map(to_block, positions, bool(m.calendar))
                 | "RunInference" >> RunInference(ExportModelHandler(cfg.export, calendar=bool(m.calendar),
                                                                     per_series=m.scale_by == "series"))
                 | "ToTables" >> beam.Map(lambda r: forecast_table(r.example, r.inference, m, levels))
                 | "WriteForecasts" >> beam.ParDo(WriteParquetFn(files_dir, "forecasts")))
    skipped = made[MakeWindowFn.SKIPPED]
    skipped_files = (skipped
                     | "BatchSkipped" >> beam.BatchElements(min_batch_size=1, max_batch_size=10_000)
                     | "SkippedTables" >> beam.Map(skipped_table, m)
                     | "WriteSkipped" >> beam.ParDo(WriteParquetFn(files_dir, "skipped")))
    reasons = (skipped
               | "Reasons" >> beam.Map(lambda s: Counter({s[1]: 1}))
               | "SumReasons" >> beam.CombineGlobally(SumCountsFn()))
    counts = read[ReadTailsFn.COUNTS] | "SumCounts" >> beam.CombineGlobally(SumCountsFn())
    forecast = made.windows | "CountForecasts" >> beam.combiners.Count.Globally()
    files = (forecasts, skipped_files) | "AllFiles" >> beam.Flatten()
    return (p
            | "Once" >> beam.Create([None])
            | "CommitPredictions" >> beam.ParDo(CommitFn(cfg, m, staging, export_info, paths),
                                                beam.pvalue.AsList(files), beam.pvalue.AsSingleton(counts),
                                                beam.pvalue.AsSingleton(reasons), beam.pvalue.AsSingleton(forecast)))


# ---------------------------------------------------------------- score mode


def score_plan(plan: Plan, m: Manifest) -> Plan:
    """The job's unit plan on the model's time grid: the export's step and gap tolerance, and
    halos sized by them (chunking still follows this input's time range)."""
    if plan.kind != m.time_kind:
        raise InputError(f"the input's time column holds {plan.kind} values, but the model was trained on "
                         f"{m.time_kind} times; give the times as the training data had them")
    ffill = m.options.get("nan_policy") == "ffill"
    return dataclasses.replace(plan, step=m.step, max_gap=m.max_gap, halo_after=m.window.halo_rows * m.max_gap,
                               halo_before=int(m.options.get("ffill_limit", 10)) * m.max_gap if ffill else 0)


class CutBlocksFn(beam.DoFn):
    """(unit key, fragments) -> Blocks of the unit's scored windows (raw inputs, actual targets)."""

    COUNTS = "counts"

    def __init__(self, cfg: JobConfig, m: Manifest, rng: score.Range, paths: list[str], known, batch: int) -> None:
        self.cfg, self.m, self.rng, self.paths, self.known, self.batch = cfg, m, rng, paths, known, batch
        self.windows = Metrics.counter(NAMESPACE, "windows_scored")

    def process(self, element, plan):
        key, fragments = element
        unit, counts = load_unit(key, sorted(fragments), self.cfg, plan, self.paths)
        blocks, more = score.unit_blocks(unit, self.m, self.rng, file_columns=self.cfg.file_columns,
                                         paths=self.paths, known=self.known, batch=self.batch)
        counts.update(more)
        self.windows.inc(more["windows_scored"])
        yield from blocks
        yield beam.pvalue.TaggedOutput(self.COUNTS, counts)


class ScoreFn(beam.CombineFn):
    """PredictionResults -> the eval.json report (evaluation's accumulators, merged across workers)."""

    def __init__(self, plan, m: Manifest, series: SeriesScaling | None, *, per_origin: bool = False,
                 levels: tuple[float, ...] = ()) -> None:
        self.plan, self.m, self.series, self.per_origin, self.levels = plan, m, series, per_origin, levels

    def create_accumulator(self):
        return score.Scores(self.plan, per_origin=self.per_origin, levels=self.levels)

    def add_input(self, acc, result):
        return score.score_block(acc, self.plan, self.m, result.example, result.inference, self.series)

    def merge_accumulators(self, accs):
        return merge_into_first(accs)

    def extract_output(self, acc):
        return acc.result(self.plan, self.m.time_kind)


def score_range(cfg: PredictConfig, m: Manifest) -> tuple[score.Range, dict]:
    """The scored range in ticks, and how predictions.json names it."""
    b = m.split_boundaries
    if cfg.split == "backtest":
        every = int(m.options.get("backtest_every", 0))
        if not every:
            raise SpecError("--split backtest: the export's dataset was made without --backtest-every; score a "
                            "range with --from/--to, or preprocess with --backtest-every N and train again")
        return (score.Range(b.test_start, None, backtest_every=every),
                {"split": "backtest", "every": every, "from": label(m, b.test_start)})
    if cfg.split == "test":
        return score.Range(b.test_start, None, whole=True), {"split": "test", "from": label(m, b.test_start)}
    if cfg.split == "val":
        return (score.Range(b.val_start, b.test_start, whole=True),
                {"split": "val", "from": label(m, b.val_start), "to": label(m, b.test_start)})
    start = parse_time(cfg.start, kind=m.time_kind) if cfg.start else None
    end = parse_time(cfg.end, kind=m.time_kind) if cfg.end else None
    if start is not None and end is not None and end <= start:
        raise SpecError(f"--to {cfg.end} is not after --from {cfg.start}")
    return score.Range(start, end), {"from": cfg.start, "to": cfg.end}


def label(m: Manifest, tick: int) -> str:
    return fm.time_label(m.time_kind, int(tick))


def build_score(p: beam.Pipeline, cfg: PredictConfig, reading: JobConfig, m: Manifest, paths: list[str],
                staging: str, export_info: dict, series: SeriesScaling | None, evaluation: dict | None):
    levels = tuple((evaluation or {}).get("quantiles", ()))
    """The score pipeline: the preprocessing job's reading, units and windows; forecasts with actuals
    as Parquet; the report computed with the evaluation accumulators."""
    rng, range_info = score_range(cfg, m)
    known = frozenset(series.names) if series is not None else None
    ev = evaluation or {}
    intervals = ev.get("interval_baselines", {})
    plan = er.plan(m, season=int(ev.get("season", 0)), mase=ev.get("mase"), levels=tuple(intervals.get("levels", ())),
                   residuals=intervals.get("residuals"))
    rows, read_counts = p | "ReadTables" >> ReadTables(reading, paths, staging)
    unit_plan = rows | "PlanUnits" >> PlanUnits(reading, paths) | "ModelGrid" >> beam.Map(score_plan, m)
    cut = (rows
           | "KeyByUnit" >> beam.ParDo(KeyByUnitFn(staging), plan=beam.pvalue.AsSingleton(unit_plan))
           | "GroupByUnit" >> beam.GroupByKey()
           | "CutBlocks" >> beam.ParDo(CutBlocksFn(reading, m, rng, paths, known, cfg.batch_size),
                                       plan=beam.pvalue.AsSingleton(unit_plan)).with_outputs(
               CutBlocksFn.COUNTS, main="blocks"))
    results = cut.blocks | "RunInference" >> RunInference(ExportModelHandler(
        cfg.export, calendar=bool(m.calendar), per_series=m.scale_by == "series"))
    files = (results
             | "ToTables" >> beam.Map(lambda r: forecast_table(r.example, r.inference, m, levels))
             | "WriteForecasts" >> beam.ParDo(WriteParquetFn(FileSystems.join(staging, "files"), "forecasts")))
    report = results | "Score" >> beam.CombineGlobally(ScoreFn(plan, m, series, per_origin=bool(rng.backtest_every),
                                                               levels=levels))
    windows = (cut[CutBlocksFn.COUNTS]
               | "Windows" >> beam.Map(lambda c: c.get("windows_scored", 0))
               | "SumWindows" >> beam.CombineGlobally(sum))
    counts = ((read_counts, cut[CutBlocksFn.COUNTS]) | "FlattenCounts" >> beam.Flatten()
              | "SumCounts" >> beam.CombineGlobally(SumCountsFn()))
    commit = CommitFn(cfg, m, staging, export_info, paths, range_info)
    return (p
            | "Once" >> beam.Create([None])
            | "CommitPredictions" >> beam.ParDo(commit, beam.pvalue.AsList(files), beam.pvalue.AsSingleton(counts),
                                                {}, beam.pvalue.AsSingleton(windows),
                                                beam.pvalue.AsSingleton(report)))
