"""Pure planning of the Beam job: the global time scan, the work-unit plan, the scaling.

Numpy/pyarrow in, plain values out; the Beam glue (transforms.py) only calls these.
A work unit is a (series bucket, time chunk) pair holding about --chunk-rows rows, plus
halo rows from the next chunk so the windows starting near its end are complete.
No `from __future__ import annotations`: make_plan and make_scaling run in beam.Map,
and Beam warns about every string type hint it reads.
"""

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from contract.manifest import Boundaries
from contract.records import series_id
from contract.series_scaling import SeriesScaling
from preprocessing.durations import parse_duration
from preprocessing.errors import InputError
from preprocessing.options import JobConfig
from preprocessing.split import resolve_boundaries
from preprocessing.stats import QUANTILES, ColumnStats, Scaling, scaling_from_stats
from preprocessing.window import unit_assignments


@dataclass(frozen=True)
class Scan:
    """What one pass over all rows tells: time range, row count, time kind, typical step."""

    rows: int
    t_min: int
    t_max: int
    kind: str
    step: int


@dataclass
class ScanAccumulator:
    """Mergeable accumulator behind `Scan` (so the result does not depend on bundling).

    kinds maps each time kind seen to the index of a file that has it (for the error).
    """

    rows: int = 0
    t_min: int | None = None
    t_max: int | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    steps: list[tuple[float, int]] = field(default_factory=list)

    def add(self, table: pa.Table) -> "ScanAccumulator":
        t = table.column("time").to_numpy()
        self._extend(len(t), int(t.min()), int(t.max()))
        self.kinds.setdefault(table.schema.metadata[b"kind"].decode(), int(table.column("file")[0].as_py()))
        med, weight = typical_step(table)
        if weight:
            self.steps.append((med, weight))
        return self

    def _extend(self, rows: int, lo: int, hi: int) -> None:
        self.rows += rows
        self.t_min = lo if self.t_min is None else min(self.t_min, lo)
        self.t_max = hi if self.t_max is None else max(self.t_max, hi)

    def merge(self, other: "ScanAccumulator") -> "ScanAccumulator":
        if other.rows:
            self._extend(other.rows, other.t_min, other.t_max)
            for k, v in other.kinds.items():
                self.kinds.setdefault(k, v)
            self.steps.extend(other.steps)
        return self

    def result(self, paths: list[str]) -> Scan:
        if self.rows == 0:
            shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            raise InputError(f"the input files ({shown}) hold no data rows; check --input and the files")
        if len(self.kinds) > 1:
            parts = ", ".join(f"{k} in {paths[i]}" for k, i in sorted(self.kinds.items()))
            raise InputError(f"the time column has different types across files ({parts}); use one type in all files")
        steps = sorted(self.steps)
        if steps:
            w = np.cumsum([s[1] for s in steps])
            step = steps[int(np.searchsorted(w, w[-1] / 2))][0]
        else:
            step = 1
        return Scan(rows=self.rows, t_min=self.t_min, t_max=self.t_max, kind=next(iter(self.kinds)), step=step)


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


def make_plan(scan: Scan, cfg: JobConfig) -> Plan:
    """Chunk span and bucket count so a unit holds about cfg.chunk_rows rows (on average over units)."""
    step = max(1, int(scan.step))
    max_gap = parse_duration(cfg.max_gap, timestamp=scan.kind == "timestamp") if cfg.max_gap else int(step * 1.5)
    width = scan.t_max - scan.t_min + step
    # no chunk needs to be longer than the whole range (and int64 ticks must not overflow)
    span = max(step, min(cfg.chunk_rows * step, width))
    # Series are hashed into buckets so a (bucket, time chunk) unit holds about chunk_rows rows
    # whatever the series count: many short series share one unit, and the unit count is about
    # rows / chunk_rows (a chunk capped at the whole range must not make one unit per series).
    chunks = -(-width // span)
    buckets = max(1, int(np.ceil(scan.rows / (chunks * cfg.chunk_rows)))) if cfg.series_column else 1
    return Plan(
        kind=scan.kind, t_min=scan.t_min, t_max=scan.t_max, rows=scan.rows, step=step, max_gap=max_gap,
        span=span, buckets=buckets,
        halo_after=cfg.window.halo_rows * max_gap,
        halo_before=cfg.ffill_limit * max_gap if cfg.nan_policy == "ffill" else 0,
        boundaries=resolve_boundaries(
            kind=scan.kind, t_min=scan.t_min, t_max=scan.t_max, train_fraction=cfg.train_fraction,
            val_fraction=cfg.val_fraction, val_start=cfg.val_start, test_start=cfg.test_start,
        ),
    )


def series_codes(table: pa.Table) -> np.ndarray:
    return table.column("series").combine_chunks().dictionary_encode().indices.to_numpy(zero_copy_only=False)


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


def unit_rows(table: pa.Table, plan: Plan):
    """Row batch -> ((bucket, chunk), row indices, owned) per work unit; halo copies are not owned."""
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
    change = np.flatnonzero((np.diff(chunks) != 0) | (np.diff(bucket) != 0)) + 1
    bounds = np.concatenate([[0], change, [len(rows)]])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        yield (int(bucket[a]), int(chunks[a])), rows[a:b], owned[a:b]


def unit_part(table: pa.Table, rows: np.ndarray, owned: np.ndarray) -> pa.Table:
    """A unit's rows of `table` as a compact copy, with its `owned` column.

    One `take` per unit, not slices of one big table: a pickled pyarrow slice carries its
    whole parent buffer, so with small chunks every slice of a batch would ship (and hold in
    memory) the entire batch again.
    """
    return table.take(pa.array(rows)).append_column("owned", pa.array(owned))


def unit_slices(table: pa.Table, plan: Plan):
    """Row batch -> ((bucket, chunk), rows) slices, halo copies marked `owned=False`."""
    for key, rows, owned in unit_rows(table, plan):
        yield key, unit_part(table, rows, owned)


def scaling_quantiles(stats: ColumnStats) -> np.ndarray | None:
    """[len(QUANTILES), C] training quantiles, when robust scaling asked for a sketch."""
    return stats.sketch.quantiles(QUANTILES) if stats.sketch is not None else None


def unscaled_columns(cfg: JobConfig) -> set:
    """Columns kept in original units: --unscaled, the calendar's, class-id targets."""
    unscaled = set(cfg.unscaled) | set(cfg.calendar_columns)  # sin/cos already in [-1, 1]
    if cfg.task != "regression":
        unscaled |= {t for t in cfg.targets if t not in cfg.features}
    return unscaled


def make_scaling(stats: ColumnStats, cfg: JobConfig) -> Scaling:
    """The scaling of every column; class-id targets stay as they are."""
    return scaling_from_stats(stats, cfg.columns, kind=cfg.scaler, unscaled=unscaled_columns(cfg),
                              quantiles=scaling_quantiles(stats), source=", ".join(cfg.input),
                              targets=cfg.targets if cfg.task == "regression" else ())


def make_series_scaling(per_series: dict, scaling: Scaling, cfg: JobConfig) -> SeriesScaling:
    """Each series' own center/scale from its training-row stats (--scale-by series).

    A column constant within a series keeps the series' center but the global scale (its
    own would divide by zero); unscaled columns stay unscaled in every series.
    """
    names = sorted(per_series)
    cols = cfg.columns
    keep = np.array([c in unscaled_columns(cfg) for c in cols])
    center = np.zeros((len(names), len(cols)))
    scale = np.ones((len(names), len(cols)))
    for i, name in enumerate(names):
        st = per_series[name]
        c, s = (st.mean, st.std) if cfg.scaler == "standard" else (st.min, st.max - st.min)
        s = np.where(s > 0, s, scaling.scale)
        center[i] = np.where(keep, scaling.center, c)
        scale[i] = np.where(keep, scaling.scale, s)
    return SeriesScaling(columns=cols, names=tuple(names), center=center, scale=scale,
                         count=np.array([per_series[n].count for n in names], dtype=np.int64),
                         fallback_center=scaling.center, fallback_scale=scaling.scale)
