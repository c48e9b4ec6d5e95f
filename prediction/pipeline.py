"""The forecast job as named PTransforms: read tails -> windows -> RunInference -> Parquet -> commit.

    files ─ReadTails─▶ (series, tail of a batch) ─CombineTails─▶ (series, last K rows)
          ─MakeWindows─▶ windows ─Batch, ToBlocks─▶ blocks ─RunInference(export)─▶ forecasts
          └─────────────▶ skipped (series, reason)
    forecasts, skipped ─WriteParquet─▶ staged files ─CommitPredictions─▶ output + predictions.json

Only each series' last K rows (K = look-back, plus the forward-fill reach) pass the shuffle,
never every row. Blocks of windows are arrays; the model is loaded once per worker process.
"""

from __future__ import annotations

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
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from contract.manifest import Manifest
from contract.series_scaling import SeriesScaling
from prediction import tails
from prediction.inference import Block, ExportModelHandler, as_rows
from prediction.options import PredictConfig
from preprocessing import output, readers
from preprocessing.errors import InputError
from preprocessing.options import JobConfig

log = logging.getLogger(__name__)
NAMESPACE = "seqscale_predict"
RESULT_NAME = "predictions.json"
FORMAT_VERSION = 1


def _compression_of(path: str) -> str:
    return CompressionTypes.GZIP if path.endswith(".gz") else CompressionTypes.UNCOMPRESSED


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
        with FileSystems.open(path, compression_type=_compression_of(path)) as f:
            for batch in readers.raw_batches(f, path, self.cfg):
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


def forecast_table(block: Block, predictions: np.ndarray, m: Manifest) -> pa.Table:
    """Long format: one row per series, step and target (actual beside it in score mode)."""
    p = as_rows(np.asarray(predictions, np.float64))
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

    def __init__(self, cfg: PredictConfig, m: Manifest, staging: str, export_info: dict, paths: list[str]) -> None:
        self.cfg, self.m, self.staging, self.export_info, self.paths = cfg, m, staging, export_info, paths

    def process(self, _, files, counts, skipped, forecast):
        moves, rows, names = [], Counter(), Counter()
        for kind, path, n in sorted(files):
            names[kind] += 1
            moves.append((path, f"{kind}-{names[kind]:05d}.parquet"))
            rows[kind] += n
        result = {
            "format_version": FORMAT_VERSION,
            "mode": "forecast",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "export": self.export_info,
            "input": self.paths,
            "look_back": self.m.window.look_back,
            "horizon": self.m.window.horizon,
            "target_sequence": self.m.window.target_sequence,
            "targets": list(self.m.targets),
            "counts": {**dict(sorted(counts.items())), "series_forecast": int(forecast),
                       "forecast_rows": int(rows["forecasts"]), "series_skipped": int(sum(skipped.values()))},
            "skipped": dict(sorted(skipped.items())),
            "files": {"forecasts": [n for _, n in moves if n.startswith("forecasts")],
                      "skipped": [n for _, n in moves if n.startswith("skipped")]},
        }
        output.commit(self.cfg.output, self.staging, moves, json.dumps(result, indent=2), marker=RESULT_NAME)
        yield result


class SumCountsFn(beam.CombineFn):
    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, counts):
        acc.update(counts)
        return acc

    def merge_accumulators(self, accs):
        out = Counter()
        for a in accs:
            out.update(a)
        return out

    def extract_output(self, acc):
        return dict(acc)


def export_identity(export_dir: str, manifest_text: str) -> dict:
    return {"path": export_dir, "manifest_sha256": hashlib.sha256(manifest_text.encode()).hexdigest()}


def build(p: beam.Pipeline, cfg: PredictConfig, reading: JobConfig, m: Manifest, paths: list[str], staging: str,
          export_info: dict, series: SeriesScaling | None):
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
                 | "ToTables" >> beam.Map(lambda r: forecast_table(r.example, r.inference, m))
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
