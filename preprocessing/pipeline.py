"""The Beam job: read -> validate -> split by time -> global stats -> scale -> window -> shard.

Composition only; the logic lives in pure modules (readers, clean, window, stats,
split, shards). Elements are pyarrow tables or numpy work units, never one Python
object per row. Materialized windows never pass through a Beam shuffle by default:
they are written straight from the unit that cuts them (see shards.py).

    files ─ReadTables─▶ row batches ─ScanTime─▶ plan (time range, step, split times)
                                    └KeyByUnit─GroupByUnit─CleanUnits─▶ units ─▶ train stats
    units ─MakeWindows(plan, scaling)─▶ staged units ─WriteShards─▶ shards ─CommitDataset─▶ metadata.json
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import Counter
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from preprocessing import readers, shards
from preprocessing.clean import Unit, clean_unit
from preprocessing.errors import InputError, user_message
from preprocessing.manifest import FORMAT_VERSION, ColumnInfo, Manifest
from preprocessing.options import JobConfig, build_parser, load_spec_file, parse_duration, resolve
from preprocessing.records import ENCODING, series_id
from preprocessing.split import SPLITS, TRAIN, Boundaries, resolve_boundaries
from preprocessing.stats import QUANTILES, ColumnStats, Scaling, scaling_from_stats
from preprocessing.window import grid_phase_ok, split_windows, unit_assignments, window_starts

log = logging.getLogger(__name__)
NAMESPACE = "seqscale"


# ---------------------------------------------------------------- plan (pure)


@dataclass(frozen=True)
class Plan:
    """Global facts every work unit needs: time grid, chunking, splits."""

    kind: str
    t_min: int
    t_max: int
    rows: int
    step: int
    max_gap: int
    span: int
    buckets: int
    halo_after: int
    halo_before: int
    boundaries: Boundaries


def make_plan(scan: dict, cfg: JobConfig) -> Plan:
    """Chunk span and bucket count so a unit holds about cfg.chunk_rows rows."""
    step = max(1, int(scan["step"]))
    max_gap = parse_duration(cfg.max_gap, timestamp=scan["kind"] == "timestamp") if cfg.max_gap else int(step * 1.5)
    width = scan["t_max"] - scan["t_min"] + step
    # no chunk needs to be longer than the whole range (and int64 ticks must not overflow)
    span = max(step, min(cfg.chunk_rows * step, width))
    equivalent_series = scan["rows"] * step / width
    buckets = max(1, int(np.ceil(equivalent_series))) if cfg.series_column else 1
    return Plan(
        kind=scan["kind"],
        t_min=scan["t_min"],
        t_max=scan["t_max"],
        rows=scan["rows"],
        step=step,
        max_gap=max_gap,
        span=span,
        buckets=buckets,
        halo_after=(cfg.look_back + cfg.horizon - 1) * max_gap,
        halo_before=cfg.ffill_limit * max_gap if cfg.nan_policy == "ffill" else 0,
        boundaries=resolve_boundaries(
            kind=scan["kind"],
            t_min=scan["t_min"],
            t_max=scan["t_max"],
            train_fraction=cfg.train_fraction,
            val_fraction=cfg.val_fraction,
            val_start=cfg.val_start,
            test_start=cfg.test_start,
        ),
    )


def series_buckets(series: pa.ChunkedArray | pa.Array, buckets: int) -> np.ndarray:
    """Stable bucket of each row's series key (the same on every worker)."""
    enc = (series.combine_chunks() if isinstance(series, pa.ChunkedArray) else series).dictionary_encode()
    ids = np.array([series_id(str(k)) % buckets for k in enc.dictionary.to_pylist()], dtype=np.int64)
    return ids[enc.indices.to_numpy(zero_copy_only=False)]


def typical_step(table: pa.Table) -> tuple[float, int]:
    """Typical positive time step within series in one batch, and how many steps it saw.

    The most frequent step when one clearly dominates (regular sampling, even when rows
    of a series are scattered over several files), else the median (jittered times).
    """
    t = table.column("time").to_numpy()
    if "series" in table.column_names:
        codes = series_codes(table)
        order = np.lexsort((t, codes))
        codes, t = codes[order], t[order]
        same = codes[1:] == codes[:-1]
    else:
        t = np.sort(t)
        same = np.ones(max(len(t) - 1, 0), dtype=bool)
    d = np.diff(t)[same]
    d = d[d > 0]
    if not len(d):
        return 0.0, 0
    values, counts = np.unique(d, return_counts=True)
    top = int(np.argmax(counts))
    if counts[top] >= 0.1 * len(d):
        return float(values[top]), len(d)
    return float(np.median(d)), len(d)


def series_codes(table: pa.Table) -> np.ndarray:
    return table.column("series").combine_chunks().dictionary_encode().indices.to_numpy(zero_copy_only=False)


# ---------------------------------------------------------------- Beam glue


class ReadTablesFn(beam.DoFn):
    """(file index, path) -> normalized row batches; counts rows read and dropped."""

    COUNTS = "counts"

    def __init__(self, cfg: JobConfig, paths: list[str]) -> None:
        self.cfg, self.paths = cfg, paths
        self.rows_read = Metrics.counter(NAMESPACE, "rows_read")
        self.rows_dropped = Metrics.counter(NAMESPACE, "rows_dropped")

    def process(self, element):
        index, path = element
        counts: Counter = Counter()
        offset = 0
        kinds = set()
        with FileSystems.open(path, compression_type=_compression_of(path)) as f:
            for batch in readers.raw_batches(f, path, self.cfg):
                if batch.num_rows == 0:
                    continue
                table, kind = readers.normalize(batch, path=path, file_index=index, first_row=offset, cfg=self.cfg)
                kinds.add(kind)
                # The time kind travels as schema metadata so ScanTime can compare files.
                table = table.replace_schema_metadata({"kind": kind})
                offset += batch.num_rows
                table, dropped = readers.apply_nan_policy(table, paths=self.paths, cfg=self.cfg)
                counts["rows_dropped.nan_or_inf"] += dropped
                self.rows_dropped.inc(dropped)
                if table.num_rows:
                    yield table
        counts["rows_read"] += offset
        self.rows_read.inc(offset)
        if offset == 0:
            counts["empty_files"] += 1
            log.warning("%s has no data rows", path)
        counts[f"files_read.{kinds.pop() if kinds else 'empty'}"] += 1
        yield beam.pvalue.TaggedOutput(self.COUNTS, counts)


def _compression_of(path: str) -> str:
    return CompressionTypes.UNCOMPRESSED if readers.file_format(path) == "parquet" else CompressionTypes.AUTO


class ScanTimeFn(beam.CombineFn):
    """Global time range, row count, time kind and typical step, in one pass."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def create_accumulator(self):
        return {"rows": 0, "t_min": None, "t_max": None, "kinds": {}, "steps": []}

    def add_input(self, acc, table: pa.Table):
        t = table.column("time").to_numpy()
        acc["rows"] += len(t)
        lo, hi = int(t.min()), int(t.max())
        acc["t_min"] = lo if acc["t_min"] is None else min(acc["t_min"], lo)
        acc["t_max"] = hi if acc["t_max"] is None else max(acc["t_max"], hi)
        acc["kinds"].setdefault(table.schema.metadata[b"kind"].decode(), int(table.column("file")[0].as_py()))
        med, weight = typical_step(table)
        if weight:
            acc["steps"].append((med, weight))
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for a in accs:
            if a["rows"] == 0:
                continue
            out["rows"] += a["rows"]
            out["t_min"] = a["t_min"] if out["t_min"] is None else min(out["t_min"], a["t_min"])
            out["t_max"] = a["t_max"] if out["t_max"] is None else max(out["t_max"], a["t_max"])
            for k, v in a["kinds"].items():
                out["kinds"].setdefault(k, v)
            out["steps"].extend(a["steps"])
        return out

    def extract_output(self, acc):
        if acc["rows"] == 0:
            raise InputError("the input files hold no data rows; check --input and the files")
        if len(acc["kinds"]) > 1:
            parts = ", ".join(f"{k} in {self.paths[i]}" for k, i in sorted(acc["kinds"].items()))
            raise InputError(f"the time column has different types across files ({parts}); use one type in all files")
        steps = sorted(acc["steps"])
        if steps:
            w = np.cumsum([s[1] for s in steps])
            step = steps[int(np.searchsorted(w, w[-1] / 2))][0]
        else:
            step = 1
        return {
            "rows": acc["rows"],
            "t_min": acc["t_min"],
            "t_max": acc["t_max"],
            "kind": next(iter(acc["kinds"])),
            "step": step,
        }


class KeyByUnitFn(beam.DoFn):
    """Row batch -> ((bucket, chunk), rows) slices, with halo copies for chunk borders."""

    def __init__(self, cfg: JobConfig) -> None:
        self.cfg = cfg

    def process(self, table: pa.Table, plan: Plan):
        t = table.column("time").to_numpy()
        rows, chunks, owned = unit_assignments(
            t, t0=plan.t_min, span=plan.span, halo_after=plan.halo_after, halo_before=plan.halo_before
        )
        if "series" in table.column_names and plan.buckets > 1:
            bucket = series_buckets(table.column("series"), plan.buckets)[rows]
        else:
            bucket = np.zeros(len(rows), dtype=np.int64)
        order = np.lexsort((chunks, bucket))
        rows, chunks, owned, bucket = rows[order], chunks[order], owned[order], bucket[order]
        taken = table.take(pa.array(rows)).append_column("owned", pa.array(owned))
        change = np.flatnonzero((np.diff(chunks) != 0) | (np.diff(bucket) != 0)) + 1
        bounds = np.concatenate([[0], change, [len(rows)]])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            yield (int(bucket[a]), int(chunks[a])), taken.slice(a, b - a)


class CleanUnitFn(beam.DoFn):
    """Grouped rows of one unit -> a clean Unit, its training-row stats and counts."""

    STATS, COUNTS = "stats", "counts"

    def __init__(self, cfg: JobConfig, paths: list[str]) -> None:
        self.cfg, self.paths = cfg, paths
        self.units = Metrics.counter(NAMESPACE, "units")

    def process(self, element, plan: Plan):
        key, tables = element
        table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables])
        unit, counts = clean_unit(
            key,
            table,
            ncols=len(self.cfg.columns),
            duplicates=self.cfg.duplicates,
            nan_policy=self.cfg.nan_policy,
            ffill_limit=self.cfg.ffill_limit,
            max_gap=plan.max_gap,
            time_kind=plan.kind,
            paths=self.paths,
        )
        split = plan.boundaries.split_of(unit.time)
        for i, name in enumerate(SPLITS):
            counts[f"rows.{name}"] += int(((split == i) & unit.owned).sum())
        train = unit.owned & (split == TRAIN)
        self.units.inc()
        yield beam.pvalue.TaggedOutput(
            self.STATS, ColumnStats.of(unit.values[train], quantiles=self.cfg.scaler == "robust")
        )
        yield beam.pvalue.TaggedOutput(self.COUNTS, counts)
        if len(unit):
            yield unit


class MergeStatsFn(beam.CombineFn):
    """Thin wrapper: every method delegates to ColumnStats.merge."""

    def __init__(self, columns: int, quantiles: bool) -> None:
        self.columns, self.quantiles = columns, quantiles

    def create_accumulator(self):
        return ColumnStats.empty(self.columns, quantiles=self.quantiles)

    def add_input(self, acc, stats):
        return acc.merge(stats)

    def merge_accumulators(self, accs):
        accs = iter(accs)
        first = next(accs)
        for a in accs:
            first.merge(a)
        return first

    def extract_output(self, acc):
        return acc


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


def make_scaling(stats: ColumnStats, cfg: JobConfig) -> Scaling:
    unscaled = set(cfg.unscaled)
    if cfg.task != "regression":
        unscaled |= {t for t in cfg.targets if t not in cfg.features}
    q = stats.sketch.quantiles(QUANTILES) if stats.sketch is not None else None
    return scaling_from_stats(stats, cfg.columns, kind=cfg.scaler, unscaled=unscaled, quantiles=q)


def check_targets(unit: Unit, rows: np.ndarray, y: np.ndarray, cfg: JobConfig, kind: str) -> None:
    """Classification targets (the target rows `rows` of y) must be class ids: {0, 1} or 0..K-1."""
    if cfg.task == "regression":
        return
    y = y[rows]
    k = 2 if cfg.task == "binary" else cfg.num_classes
    bad = (y[:, 0] != np.round(y[:, 0])) | (y[:, 0] < 0) | (y[:, 0] >= k)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = int(rows[i])
        t = np.datetime64(int(unit.time[row]), "ns") if kind == "timestamp" else int(unit.time[row])
        raise InputError(
            f"series {unit.series_names[unit.series[row]]!r} at time {t}: target {cfg.targets[0]!r} is {y[i, 0]:g}, "
            f"but --task {cfg.task} needs class ids 0..{k - 1}; fix the labels or use --task regression"
        )


class WriteWindowsFn(beam.DoFn):
    """Unit -> windows cut, scaled, permuted and dealt into piece files (or shuffle keys)."""

    COUNTS = "counts"

    def __init__(self, cfg: JobConfig, staging: str) -> None:
        self.cfg, self.staging = cfg, staging
        self.windows = {s: Metrics.counter(NAMESPACE, f"windows_{s}") for s in SPLITS}

    def process(self, unit: Unit, plan: Plan, scaling: Scaling):
        cfg = self.cfg
        cols = cfg.columns
        feat_idx = [cols.index(c) for c in cfg.features]
        targ_idx = [cols.index(c) for c in cfg.targets]
        scaled = scaling.apply(unit.values)
        x = scaled[:, feat_idx].astype(np.float32)
        y_src = scaled if cfg.task == "regression" else unit.values
        y = y_src[:, targ_idx].astype(np.float32)
        sid = np.array([series_id(n) for n in unit.series_names], dtype=np.int64)[unit.series]

        counts: Counter = Counter()
        begins = unit.segment_begins(plan.max_gap)
        seg_len = np.diff(np.append(begins, len(unit)))
        short = (seg_len < cfg.look_back + cfg.horizon) & unit.owned[begins]
        counts["segments_too_short"] += int(short.sum())
        counts["rows_in_short_segments"] += int(seg_len[short].sum())

        starts = window_starts(len(unit), look_back=cfg.look_back, horizon=cfg.horizon, segment_begins=begins)
        starts = starts[unit.owned[starts]]
        starts = starts[grid_phase_ok(unit.time[starts], t0=plan.t_min, step=plan.step, stride=cfg.stride)]
        split_id, inside = split_windows(
            starts, plan.boundaries.split_of(unit.time), look_back=cfg.look_back, horizon=cfg.horizon
        )
        counts["windows_dropped.crosses_split_boundary"] += int((~inside).sum())
        if cfg.task != "regression":
            last = starts[inside] + cfg.look_back - 1 + cfg.horizon
            check_targets(unit, last, y, cfg, plan.kind)
        rng = np.random.default_rng([cfg.seed, unit.key[0], unit.key[1] + (1 << 40)])
        encode = dict(look_back=cfg.look_back, horizon=cfg.horizon,
                      target_sequence=cfg.target_sequence, block_size=cfg.block_size)
        starts_by_split = {}
        for s_id, split in enumerate(SPLITS):
            sel = starts[inside & (split_id == s_id)]
            counts[f"windows.{split}"] += len(sel)
            self.windows[split].inc(len(sel))
            perm = sel[rng.permutation(len(sel))]
            n_shards = cfg.train_shards if split == "train" else cfg.eval_shards
            if cfg.full_shuffle:
                for n, rec in shards.encode_windows(x, y, unit.time, sid, perm, **encode):
                    yield (split, int(rng.integers(n_shards))), (n, rec)
            else:
                starts_by_split[split] = shards.deal(perm, n_shards, int(rng.integers(n_shards)))
        if not cfg.full_shuffle and any(counts[f"windows.{s}"] for s in SPLITS):
            path = FileSystems.join(self.staging, "units", f"u{unit.key[0]}_{unit.key[1]}.npz")
            yield shards.stage_unit(path, x=x, y=y, t=unit.time, sid=sid, starts_by_split=starts_by_split)
        yield beam.pvalue.TaggedOutput(self.COUNTS, counts)


class WriteShardFn(beam.DoFn):
    """(split, index) -> the final shard file in staging, cut from the staged units."""

    def __init__(self, cfg: JobConfig, staging: str) -> None:
        self.cfg, self.staging = cfg, staging
        self.cache: shards.UnitCache | None = None

    def setup(self):
        self.cache = shards.UnitCache()

    def process(self, element, units):
        cfg = self.cfg
        split, index = element
        count = cfg.train_shards if split == "train" else cfg.eval_shards
        name = shards.shard_name(split, index, count, cfg.compression)
        dest = FileSystems.join(self.staging, "final", name)
        seed = int(np.random.SeedSequence([cfg.seed, SPLITS.index(split), index]).generate_state(1)[0])
        records = shards.shard_records(
            units, split, index, np.random.default_rng(seed), look_back=cfg.look_back, horizon=cfg.horizon,
            target_sequence=cfg.target_sequence, block_size=cfg.block_size, cache=self.cache,
        )
        windows, size, sha = shards.write_shard(dest, records, compression=cfg.compression)
        yield split, index, name, windows, size, sha, dest


class WriteShuffledShardFn(beam.DoFn):
    """--full-shuffle: ((split, shard), records) after a Beam shuffle -> the final shard."""

    def __init__(self, cfg: JobConfig, staging: str) -> None:
        self.cfg, self.staging = cfg, staging

    def process(self, element):
        (split, index), records = element
        count = self.cfg.train_shards if split == "train" else self.cfg.eval_shards
        name = shards.shard_name(split, index, count, self.cfg.compression)
        dest = FileSystems.join(self.staging, "final", name)
        windows, size, sha = shards.write_shard(dest, records, compression=self.cfg.compression)
        yield split, index, name, windows, size, sha, dest


class WriteManifestFn(beam.DoFn):
    """Build metadata.json from all side inputs and commit the dataset (runs once)."""

    def __init__(self, cfg: JobConfig, staging: str, started: float) -> None:
        self.cfg, self.staging, self.started = cfg, staging, started

    def process(self, _, shard_results, counts, stats, plan: Plan, scaling: Scaling):
        cfg = self.cfg
        shard_results = list(shard_results) + self._empty_shards(shard_results)
        infos = shards.shard_infos(r[:6] for r in shard_results)
        windows = {s: sum(i.windows for i in infos[s]) for s in SPLITS}
        if windows["train"] == 0:
            raise InputError(
                f"no training windows: {counts.get('segments_too_short', 0)} runs of rows are "
                f"shorter than look_back + horizon = {cfg.look_back + cfg.horizon} rows or cross the split boundary; "
                "lower --look-back, widen --max-gap, or give more data"
            )
        q = stats.sketch.quantiles(QUANTILES) if stats.sketch is not None else None
        columns = tuple(
            ColumnInfo(
                name=c,
                count=int(stats.count),
                mean=float(stats.mean[i]),
                std=float(stats.std[i]),
                min=float(stats.min[i]),
                max=float(stats.max[i]),
                center=float(scaling.center[i]),
                scale=float(scaling.scale[i]),
                scaled=bool(scaling.scale[i] != 1.0 or scaling.center[i] != 0.0),
                quantiles=None if q is None else {f"q{int(p * 100)}": float(q[j, i]) for j, p in enumerate(QUANTILES)},
            )
            for i, c in enumerate(cfg.columns)
        )
        dropped = {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("rows_dropped.") and v}
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            spec=cfg.to_dict(),
            task=cfg.task,
            num_classes=cfg.num_classes if cfg.task == "multiclass" else (2 if cfg.task == "binary" else None),
            features=cfg.features,
            targets=cfg.targets,
            series_column=cfg.series_column,
            time_column=cfg.time_column,
            time_kind=plan.kind,
            time_range=(plan.t_min, plan.t_max),
            step=plan.step,
            max_gap=plan.max_gap,
            look_back=cfg.look_back,
            horizon=cfg.horizon,
            stride=cfg.stride,
            target_sequence=cfg.target_sequence,
            split_boundaries={"val_start": plan.boundaries.val_start, "test_start": plan.boundaries.test_start},
            scaler=cfg.scaler,
            columns=columns,
            shards=infos,
            counts={
                "rows_read": int(counts.get("rows_read", 0)),
                "rows_dropped": dropped,
                "rows_rejected": int(sum(dropped.values())),
                "rows_per_split": {s: int(counts.get(f"rows.{s}", 0)) for s in SPLITS},
                "windows": windows,
                "windows_dropped": {"crosses_split_boundary": int(counts.get("windows_dropped.crosses_split_boundary", 0))},
                "segments_too_short": int(counts.get("segments_too_short", 0)),
                "rows_in_short_segments": int(counts.get("rows_in_short_segments", 0)),
                "values_forward_filled": int(counts.get("values_forward_filled", 0)),
                "empty_files": int(counts.get("empty_files", 0)),
                "files": int(sum(v for k, v in counts.items() if k.startswith("files_read."))),
                "units": int(plan.buckets),
            },
            encoding={
                "name": ENCODING,
                "block_size": cfg.block_size,
                "compression": cfg.compression,
                "x_shape": [cfg.look_back, len(cfg.features)],
                "y_shape": [cfg.target_rows, len(cfg.targets)],
                "dtype": "float32",
                "byte_order": "little",
            },
        )
        staged = {s: [] for s in SPLITS}
        for r in sorted(shard_results):
            staged[r[0]].append((r[6], r[2]))
        shards.commit(cfg.output, self.staging, staged, manifest.to_json())
        log.info(
            "seqscale: %d rows read, dropped %s, windows %s, %.1f s",
            manifest.counts["rows_read"], dropped or "none", windows, time.time() - self.started,
        )
        yield manifest


    def _empty_shards(self, results) -> list[tuple]:
        """Shards that received no windows (possible with --full-shuffle) still exist, empty."""
        have = {(r[0], r[1]) for r in results}
        out = []
        for split in SPLITS:
            count = self.cfg.train_shards if split == "train" else self.cfg.eval_shards
            for i in range(count):
                if (split, i) not in have:
                    name = shards.shard_name(split, i, count, self.cfg.compression)
                    dest = FileSystems.join(self.staging, "final", name)
                    windows, size, sha = shards.write_shard(dest, [], compression=self.cfg.compression)
                    out.append((split, i, name, windows, size, sha, dest))
        return out


# ---------------------------------------------------------------- PTransforms


class ReadTables(beam.PTransform):
    def __init__(self, cfg: JobConfig, paths: list[str]) -> None:
        super().__init__()
        self.cfg, self.paths = cfg, paths

    def expand(self, pbegin):
        out = (
            pbegin
            | "ListFiles" >> beam.Create(list(enumerate(self.paths)))
            | "SpreadFiles" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadTablesFn(self.cfg, self.paths)).with_outputs(ReadTablesFn.COUNTS, main="rows")
        )
        return out.rows, out[ReadTablesFn.COUNTS]


class MakeWindows(beam.PTransform):
    """Units -> shard files in staging (results per shard), plus counts."""

    def __init__(self, cfg: JobConfig, staging: str, plan, scaling) -> None:
        super().__init__()
        self.cfg, self.staging, self.plan, self.scaling = cfg, staging, plan, scaling

    def expand(self, units):
        cfg = self.cfg
        out = units | "Cut" >> beam.ParDo(
            WriteWindowsFn(cfg, self.staging),
            plan=beam.pvalue.AsSingleton(self.plan),
            scaling=beam.pvalue.AsSingleton(self.scaling),
        ).with_outputs(WriteWindowsFn.COUNTS, main="staged")
        if cfg.full_shuffle:
            # Materialized windows through a Beam shuffle: right on Dataflow's shuffle
            # service, slow and memory-hungry on DirectRunner (see README).
            results = (
                out.staged
                | "ShuffleBlocks" >> beam.GroupByKey()
                | "WriteShuffledShards" >> beam.ParDo(WriteShuffledShardFn(cfg, self.staging))
            )
        else:
            ids = [(s, i) for s in SPLITS for i in range(cfg.train_shards if s == "train" else cfg.eval_shards)]
            results = (
                units.pipeline
                | "ShardIds" >> beam.Create(ids)
                | "SpreadShards" >> beam.Reshuffle()
                | "WriteShards" >> beam.ParDo(WriteShardFn(cfg, self.staging), units=beam.pvalue.AsList(out.staged))
            )
        return results, out[WriteWindowsFn.COUNTS]


class CommitDataset(beam.PTransform):
    """Shard results -> metadata.json and the commit (runs once, after every shard)."""

    def __init__(self, cfg: JobConfig, staging: str, started: float, counts, stats, plan, scaling) -> None:
        super().__init__()
        self.cfg, self.staging, self.started = cfg, staging, started
        self.counts, self.stats, self.plan, self.scaling = counts, stats, plan, scaling

    def expand(self, results):
        return (
            results.pipeline
            | "Once" >> beam.Create([None])
            | "Commit" >> beam.ParDo(
                WriteManifestFn(self.cfg, self.staging, self.started),
                shard_results=beam.pvalue.AsList(results),
                counts=beam.pvalue.AsSingleton(self.counts),
                stats=beam.pvalue.AsSingleton(self.stats),
                plan=beam.pvalue.AsSingleton(self.plan),
                scaling=beam.pvalue.AsSingleton(self.scaling),
            )
        )


def build(p: beam.Pipeline, cfg: JobConfig, paths: list[str], staging: str, started: float):
    """Attach the whole job to pipeline `p`; returns the PCollection of the one Manifest."""
    rows, read_counts = p | "ReadTables" >> ReadTables(cfg, paths)
    plan = (
        rows
        | "ScanTime" >> beam.CombineGlobally(ScanTimeFn(paths))
        | "PlanUnits" >> beam.Map(make_plan, cfg)
    )
    cleaned = (
        rows
        | "KeyByUnit" >> beam.ParDo(KeyByUnitFn(cfg), plan=beam.pvalue.AsSingleton(plan))
        | "GroupByUnit" >> beam.GroupByKey()
        | "CleanUnits" >> beam.ParDo(CleanUnitFn(cfg, paths), plan=beam.pvalue.AsSingleton(plan)).with_outputs(
            CleanUnitFn.STATS, CleanUnitFn.COUNTS, main="units"
        )
    )
    stats = cleaned[CleanUnitFn.STATS] | "ComputeScalingStats" >> beam.CombineGlobally(
        MergeStatsFn(len(cfg.columns), cfg.scaler == "robust")
    )
    scaling = stats | "Scaling" >> beam.Map(make_scaling, cfg)
    results, window_counts = cleaned.units | "MakeWindows" >> MakeWindows(cfg, staging, plan, scaling)
    counts = (
        (read_counts, cleaned[CleanUnitFn.COUNTS], window_counts)
        | "FlattenCounts" >> beam.Flatten()
        | "SumCounts" >> beam.CombineGlobally(SumCountsFn())
    )
    return results | "CommitDataset" >> CommitDataset(cfg, staging, started, counts, stats, plan, scaling)


def list_inputs(patterns: tuple[str, ...]) -> list[str]:
    """Expand patterns (globs, gs://) into a sorted list; a pattern matching nothing is an error."""
    out: list[str] = []
    for pattern in patterns:
        try:
            matched = FileSystems.match([pattern])[0].metadata_list
        except Exception as e:  # noqa: BLE001 - Beam raises BeamIOError for no match
            raise InputError(f"--input {pattern!r} matches no file ({e}); check the path or glob") from e
        files = sorted(m.path for m in matched if not m.path.endswith("/"))
        if not files:
            raise InputError(f"--input {pattern!r} matches no file; check the path or glob")
        for f in files:
            readers.file_format(f)
        out.extend(files)
    if len(set(out)) != len(out):
        raise InputError("--input patterns match the same file more than once; give each file once")
    return out


def run(argv: list[str] | None = None) -> Manifest | None:
    """Parse flags, build and run the pipeline. Returns the manifest when run locally."""
    parser = build_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    options = PipelineOptions(pipeline_args)
    options.view_as(SetupOptions).save_main_session = False
    FileSystems.set_options(options)  # gs:// access before the pipeline runs uses the same options
    spec = load_spec_file(args.spec, _read_text) if args.spec else None
    cfg = resolve(args, spec)
    started = time.time()
    paths = list_inputs(cfg.input)
    run_id = shards.new_run_id()
    staging = shards.prepare_output(cfg.output, overwrite=cfg.overwrite, run_id=run_id)
    log.info("seqscale: %d input files, output %s, staging %s", len(paths), cfg.output, staging)
    try:
        with beam.Pipeline(options=options) as p:
            build(p, cfg, paths, staging, started)
    except Exception as e:
        # No partial output: the dataset is only ever made visible by the commit step,
        # so on failure remove this run's staging area and re-raise the user's message
        # without the runner's wrapping.
        shards.discard(staging)
        msg = user_message(e)
        if msg is None:
            raise
        raise InputError(msg) from e
    log.info("seqscale: done in %.1f s", time.time() - started)
    return read_manifest(cfg.output)


def _read_text(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode()


def read_manifest(output: str) -> Manifest | None:
    path = FileSystems.join(output, "metadata.json")
    if not FileSystems.exists(path):
        return None
    return Manifest.from_json(_read_text(path), source=path)
