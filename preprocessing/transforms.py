"""Thin Beam DoFns and CombineFns: each groups or unpacks, calls pure code, and counts.

The logic lives in readers, clean, plan, cut, stats, shards and output; the Beam-specific
parts here are side inputs, tagged outputs for counts and `Metrics` counters. No
`from __future__ import annotations` here: Beam reads DoFn type hints at construction
and warns about every string hint.
"""

import datetime
import logging
import time
from collections import Counter

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from contract.calendar import coverage_note
from contract.manifest import Encoding, Manifest
from contract.records import SPLITS, TRAIN, WINDOW_SETS, shard_name
from contract.series_scaling import SERIES_SCALING_NAME
from preprocessing import cut, output, readers, shards, staging
from preprocessing.clean import clean_unit
from preprocessing.errors import InputError
from preprocessing.options import JobConfig
from preprocessing.plan import Plan, ScanAccumulator, scaling_quantiles
from preprocessing.stats import QUANTILES, ColumnStats, Scaling, first_too_large

log = logging.getLogger(__name__)
NAMESPACE = "seqscale"
PROGRESS_SECONDS = 10  # a progress line at most this often while reading a long file


class ReadTablesFn(beam.DoFn):
    """(file index, path) -> staged rows files (staging.RowsFile); counts rows read and dropped.

    The normalized rows go to Arrow files in the staging area, not into the PCollection:
    the local runner would hold every row batch in memory until the plan is known.
    """

    COUNTS = "counts"

    def __init__(self, cfg: JobConfig, paths: list[str], staging: str) -> None:
        self.cfg, self.paths, self.staging = cfg, paths, staging
        self.rows_read = Metrics.counter(NAMESPACE, "rows_read")
        self.rows_dropped = Metrics.counter(NAMESPACE, "rows_dropped")
        self.bytes_staged = Metrics.counter(NAMESPACE, "row_bytes_staged")

    def process(self, element):
        index, path = element
        counts: Counter = Counter()
        offset = 0
        kinds = set()
        started = last_report = time.time()
        writer = staging.RowsWriter(FileSystems.join(self.staging, "rows"), index, self.cfg.chunk_rows)
        for batch in readers.raw_batches(path, self.cfg):
            if batch.num_rows == 0:
                continue
            table, kind = readers.normalize(batch, path=path, file_index=index, first_row=offset, cfg=self.cfg)
            kinds.add(kind)
            # The time kind travels as schema metadata so ScanTime can compare files.
            table = table.replace_schema_metadata({"kind": kind})
            offset += batch.num_rows
            if time.time() - last_report > PROGRESS_SECONDS:
                last_report = time.time()
                log.info("seqscale: reading %s: %s rows so far (%.0f rows/s)", path, f"{offset:,}",
                         offset / (last_report - started))
            table, dropped = readers.apply_nan_policy(table, paths=self.paths, cfg=self.cfg)
            counts["rows_dropped.nan_or_inf"] += dropped
            self.rows_dropped.inc(dropped)
            if table.num_rows and (done := writer.add(table)) is not None:
                yield done
        if (done := writer.close()) is not None:
            yield done
        self.bytes_staged.inc(writer.bytes)
        counts["rows_read"] += offset
        self.rows_read.inc(offset)
        log.info("seqscale: read %s: %s rows in %.1f s", path, f"{offset:,}", time.time() - started)
        if offset == 0:
            counts["empty_files"] += 1
            log.warning("%s has no data rows", path)
        counts[f"files_read.{kinds.pop() if kinds else 'empty'}"] += 1
        yield beam.pvalue.TaggedOutput(self.COUNTS, counts)


class Progress:
    """A log line at most every PROGRESS_SECONDS for a stage that works unit by unit.

    The stretch between reading and the first shard used to log nothing for minutes; each
    DoFn instance now says how many units and rows it has done and at what rate (Beam
    counters carry the same numbers to Dataflow's UI).
    """

    def __init__(self, what: str) -> None:
        self.what, self.units, self.rows = what, 0, 0
        self.started = self.last = time.time()

    def tick(self, rows: int) -> None:
        self.units += 1
        self.rows += rows
        now = time.time()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            log.info("seqscale: %s %s units, %s rows (%.0f rows/s)", self.what, f"{self.units:,}",
                     f"{self.rows:,}", self.rows / max(now - self.started, 1e-9))


class ScanTimeFn(beam.CombineFn):
    """Global time range, row count, time kind and typical step (plan.ScanAccumulator), merged from
    the scans the reader made of each staged rows file."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def create_accumulator(self):
        return ScanAccumulator()

    def add_input(self, acc, rows_file):
        return acc.merge(rows_file.scan)

    def merge_accumulators(self, accs):
        out = ScanAccumulator()
        for a in accs:
            out.merge(a)
        return out

    def extract_output(self, acc):
        return acc.result(self.paths)


class KeyByUnitFn(beam.DoFn):
    """Staged rows file -> (unit key, staging.Fragment): its rows split by unit (halo copies for chunk
    borders), referenced in place where they are one run of the file, else copied into one fragment
    file."""

    def __init__(self, staging_dir: str) -> None:
        self.staging = staging_dir
        self.fragments = Metrics.counter(NAMESPACE, "unit_fragments")
        self.progress = None

    def setup(self):
        self.progress = Progress("split into units:")

    def process(self, rows_file, plan):
        table = staging.read_table(rows_file.path)
        name = rows_file.path.rstrip("/").split("/")[-1]
        for key, fragment in staging.split_by_unit(rows_file.path, table, plan,
                                                   FileSystems.join(self.staging, "frags", name)):
            self.fragments.inc()
            yield key, fragment
        self.progress.tick(rows_file.rows)


def load_unit(key, fragments, cfg: JobConfig, plan: Plan, paths: list[str]):
    """A unit's rows from its fragments -> the clean Unit and its counts."""
    table = staging.read_fragments(fragments)
    return clean_unit(
        key, table, ncols=len(cfg.columns), duplicates=cfg.duplicates, nan_policy=cfg.nan_policy,
        ffill_limit=cfg.ffill_limit, max_gap=plan.max_gap, time_kind=plan.kind, paths=paths,
    )


class CleanUnitFn(beam.DoFn):
    """(unit key, fragments) -> its training-row stats and counts; the main output is the
    (key, fragments) of each non-empty unit, not its rows (the local runner would hold every
    unit in memory until the scaling is known)."""

    STATS, COUNTS, SERIES_STATS = "stats", "counts", "series_stats"

    def __init__(self, cfg: JobConfig, paths: list[str]) -> None:
        self.cfg, self.paths = cfg, paths
        self.units = Metrics.counter(NAMESPACE, "units")
        self.rows = Metrics.counter(NAMESPACE, "unit_rows_cleaned")
        self.progress = None

    def setup(self):
        self.progress = Progress("cleaned")

    def process(self, element, plan):
        key, fragments = element
        fragments = sorted(fragments)
        cfg = self.cfg
        unit, counts = load_unit(key, fragments, cfg, plan, self.paths)
        split = plan.boundaries.split_of(unit.time)
        for i, name in enumerate(SPLITS):
            counts[f"rows.{name}"] += int(((split == i) & unit.owned).sum())
        train = unit.owned & (split == TRAIN)
        self.units.inc()
        self.rows.inc(len(unit))
        self.progress.tick(len(unit))
        counts["units"] += 1
        train_values = unit.values[train]
        if (big := first_too_large(train_values)) is not None:
            r, c = big
            i = int(np.flatnonzero(train)[r])
            raise InputError(
                f"{unit.label(i, self.paths)}: column {cfg.columns[c]!r} is {unit.values[i, c]:g}, a training value "
                "too large to scale (its square overflows float64); fix the value or rescale the column (e.g. "
                "change its units)")
        yield beam.pvalue.TaggedOutput(self.STATS, ColumnStats.of(train_values, quantiles=cfg.scaler == "robust"))
        if cfg.scale_by == "series":
            for code in np.unique(unit.series[train]):
                rows = train & (unit.series == code)
                yield beam.pvalue.TaggedOutput(self.SERIES_STATS, (unit.series_names[code], ColumnStats.of(unit.values[rows])))
        yield beam.pvalue.TaggedOutput(self.COUNTS, counts)
        if len(unit):
            yield key, fragments  # references only: the cut reads the unit again


def merge_into_first(accs):
    """A CombineFn's merge for accumulators with an in-place `merge` (Beam hands an iterable)."""
    accs = iter(accs)
    first = next(accs)
    for a in accs:
        first.merge(a)
    return first


class MergeStatsFn(beam.CombineFn):
    """Thin wrapper: every method delegates to ColumnStats.merge."""

    def __init__(self, columns: int, quantiles: bool) -> None:
        self.columns, self.quantiles = columns, quantiles

    def create_accumulator(self):
        return ColumnStats.empty(self.columns, quantiles=self.quantiles)

    def add_input(self, acc, stats):
        return acc.merge(stats)

    def merge_accumulators(self, accs):
        return merge_into_first(accs)

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


class CutUnitFn(beam.DoFn):
    """(unit key, fragments) -> its scaled rows and dealt window starts staged (or keyed records, --full-shuffle)."""

    COUNTS = "counts"

    def __init__(self, cfg: JobConfig, staging: str, paths: list[str]) -> None:
        self.cfg, self.staging, self.paths = cfg, staging, paths
        self.windows = {s: Metrics.counter(NAMESPACE, f"windows_{s}") for s in WINDOW_SETS}
        self.cut_units = Metrics.counter(NAMESPACE, "units_cut")
        self.progress = None

    def setup(self):
        self.progress = Progress("cut and staged")

    def process(self, element, plan: Plan, scaling: Scaling, series_scaling):
        cfg = self.cfg
        key, fragments = element
        unit, _ = load_unit(key, fragments, cfg, plan, self.paths)  # counted by CleanUnitFn already
        a = cut.unit_arrays(unit, scaling, cfg, series_scaling)
        unit, a, overflow = cut.drop_overflow(unit, a, cfg, self.paths)
        per_split, counts = cut.unit_windows(unit, a, plan, cfg)
        counts["rows_dropped.not_finite_after_scaling"] += overflow
        counts["rows_scaled_with_global_stats"] += cut.fallback_rows(unit, series_scaling)
        rng = cut.unit_rng(cfg, unit.key)
        dealt = {}
        for split, perm in cut.permuted(per_split, rng):
            self.windows[split].inc(len(perm))
            n_shards = cut.shard_count(cfg, split)
            if cfg.full_shuffle:
                for n, rec in shards.encode_windows(a.x, a.y, a.t, a.sid, perm, cfg.window, block_size=cfg.block_size):
                    yield (split, int(rng.integers(n_shards))), (n, rec)
            else:
                dealt[split] = cut.deal(perm, n_shards, int(rng.integers(n_shards)), block_size=cfg.block_size)
        if not cfg.full_shuffle and any(len(s) for s in per_split):
            path = FileSystems.join(self.staging, "units", f"u{unit.key[0]}_{unit.key[1]}.npz")
            yield shards.stage_unit(path, x=a.x, y=a.y, t=a.t, sid=a.sid, starts_by_split=dealt)
        self.cut_units.inc()
        self.progress.tick(len(unit))
        yield beam.pvalue.TaggedOutput(self.COUNTS, counts)


def _final_path(cfg: JobConfig, staging: str, split: str, index: int) -> tuple[str, str]:
    name = shard_name(split, index, cut.shard_count(cfg, split), cfg.compression)
    return name, FileSystems.join(staging, "final", name)


def _write(cfg: JobConfig, staging: str, split: str, index: int, records, units: str = "") -> shards.ShardResult:
    name, dest = _final_path(cfg, staging, split, index)
    started = time.time()
    n_records = 0

    def counted():
        nonlocal n_records
        for rec in records:
            n_records += 1
            yield rec

    windows, size, sha = shards.write_shard(dest, counted(), compression=cfg.compression)
    log.info("seqscale: wrote %s: %s windows in %s records%s, %.1f MB in %.1f s", name, f"{windows:,}",
             f"{n_records:,}", units, size / 2**20, time.time() - started)
    return shards.ShardResult(split, index, name, windows, size, sha, dest)


class WriteShardFn(beam.DoFn):
    """(split, index) -> the final shard file in staging, cut from the staged units."""

    def __init__(self, cfg: JobConfig, staging: str) -> None:
        self.cfg, self.staging = cfg, staging
        self.cache = None
        self.unit_loads = Metrics.counter(NAMESPACE, "shard_unit_loads")

    def setup(self):
        self.cache = shards.UnitCache()

    def process(self, element, units):
        cfg = self.cfg
        split, index = element
        seed = int(np.random.SeedSequence([cfg.seed, WINDOW_SETS.index(split), index]).generate_state(1)[0])
        loads = sum(1 for u in units if u.counts[split][index] > 0)
        self.unit_loads.inc(loads)
        records = shards.shard_records(units, split, index, np.random.default_rng(seed), cfg.window,
                                       block_size=cfg.block_size, cache=self.cache)
        yield _write(cfg, self.staging, split, index, records, f" from {loads:,} units")


class WriteShuffledShardFn(beam.DoFn):
    """--full-shuffle: ((split, shard), records) after a Beam shuffle -> the final shard."""

    def __init__(self, cfg: JobConfig, staging: str) -> None:
        self.cfg, self.staging = cfg, staging

    def process(self, element):
        (split, index), records = element
        yield _write(self.cfg, self.staging, split, index, records)


def no_training_windows(counts: dict, cfg: JobConfig) -> InputError:
    return InputError(
        f"no training windows: {counts.get('segments_too_short', 0)} runs of rows are "
        f"shorter than look_back + horizon = {cfg.window.span} rows or cross the split boundary; "
        "lower --look-back, widen --max-gap, or give more data"
    )


class WriteManifestFn(beam.DoFn):
    """Build metadata.json from all side inputs and commit the dataset (runs once)."""

    def __init__(self, cfg: JobConfig, staging: str) -> None:
        self.cfg, self.staging = cfg, staging

    def process(self, _, shard_results, counts, stats, plan, scaling, series_scaling):
        cfg = self.cfg
        results = sorted(list(shard_results) + self._empty_shards(shard_results))
        infos = shards.shard_infos(results)
        if not sum(i.windows for i in infos["train"]):
            raise no_training_windows(counts, cfg)
        q = scaling_quantiles(stats)
        short = coverage_note(cfg.calendar, plan.boundaries.val_start - plan.t_min)
        if short:
            log.warning("seqscale: %s: validation and test hold calendar phases the model never sees in training; "
                        "drop those parts from --calendar or train on a full cycle", short)
        manifest = Manifest.build(
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            spec=cfg.dataset_spec, window=cfg.window, time_kind=plan.kind, time_range=(plan.t_min, plan.t_max),
            step=plan.step, max_gap=plan.max_gap, boundaries=plan.boundaries, scaler=cfg.scaler,
            columns=Manifest.column_infos(
                cfg.columns, count=stats.count, mean=stats.mean, std=stats.std, minimum=stats.min,
                maximum=stats.max, center=scaling.center, scale=scaling.scale,
                quantiles=None if q is None else {f"q{int(p * 100)}": q[j] for j, p in enumerate(QUANTILES)}),
            shards=infos, counts=counts, units=counts.get("units", 0),
            encoding=Encoding(block_size=cfg.block_size, compression=cfg.compression),
            options=cfg.other_options(), scale_by=cfg.scale_by,
        )
        moves = [(r.staged, r.name) for r in results]
        if series_scaling is not None:
            staged = FileSystems.join(self.staging, "final", SERIES_SCALING_NAME)
            with FileSystems.create(staged, mime_type="application/json") as f:
                f.write(series_scaling.to_json().encode())
            moves.append((staged, SERIES_SCALING_NAME))
            if counts.get("rows_scaled_with_global_stats"):
                log.warning("seqscale: %s rows belong to series without training rows; they are scaled with the "
                            "global statistics (counted in metadata.json)", f"{counts['rows_scaled_with_global_stats']:,}")
        output.commit(cfg.output, self.staging, moves, manifest.to_json())
        yield manifest

    def _empty_shards(self, results) -> list:
        """Shards that received no windows (possible with --full-shuffle) still exist, empty."""
        have = {(r.split, r.index) for r in results}
        return [_write(self.cfg, self.staging, split, i, [])
                for split in WINDOW_SETS for i in range(cut.shard_count(self.cfg, split)) if (split, i) not in have]
