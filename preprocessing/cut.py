"""What one work unit contributes to the dataset: scaled arrays and its windows, dealt to shards.

Pure numpy. The unit's windows are named by their first row; they are permuted with a
seed derived from the job seed and the unit key (so the result does not depend on
which worker runs the unit) and dealt evenly to the N shards of each split.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from contract.records import BACKTEST, WINDOW_SETS, series_id
from contract.series_scaling import SeriesScaling
from preprocessing.clean import Unit
from preprocessing.errors import InputError
from preprocessing.options import JobConfig
from preprocessing.plan import Plan
from preprocessing.stats import Scaling
from preprocessing.window import backtest_window_starts, short_segment_gaps, unit_window_starts


@dataclass(frozen=True)
class UnitArrays:
    """A unit's rows as written: scaled float32 inputs and targets, times, series ids."""

    x: np.ndarray  # [n, F]
    y: np.ndarray  # [n, T]
    t: np.ndarray  # [n] int64
    sid: np.ndarray  # [n] int64


def unit_arrays(unit: Unit, scaling: Scaling, cfg: JobConfig, series: SeriesScaling | None = None) -> UnitArrays:
    """Scale the unit's values (each series with its own statistics when given); class-id targets stay raw."""
    cols = cfg.columns
    if series is None:
        center, scale = scaling.center, scaling.scale
    else:
        center, scale = series.gather(series.rows_of_names(unit.series_names)[unit.series], cols)
    xi = [cols.index(c) for c in cfg.window_features]
    yi = [cols.index(c) for c in cfg.targets]
    x = _scaled32(unit.values, center, scale, xi)
    if cfg.task == "regression":
        y = _scaled32(unit.values, center, scale, yi)
    else:
        with np.errstate(over="ignore"):
            y = np.ascontiguousarray(unit.values[:, yi], dtype=np.float32)
    sid = np.array([series_id(n) for n in unit.series_names], dtype=np.int64)[unit.series]
    return UnitArrays(x=x, y=y, t=unit.time, sid=sid)


def _scaled32(values: np.ndarray, center, scale, cols: list[int]) -> np.ndarray:
    """float32 C-ordered `(values - center) / scale` of the columns `cols` (computed in float64).

    C order: picking columns leaves a Fortran-ordered array, and gathering window rows from one
    (np.take along rows) is ~35x slower than from rows laid out contiguously. Only the picked
    columns are scaled, into one float64 temporary, and the division writes float32 directly.
    """
    tmp = np.asarray(values[:, cols], np.float64)  # a copy: fancy indexing
    np.subtract(tmp, center[..., cols], out=tmp)  # center, scale: [C], or [n, C] per row
    out = np.empty((len(values), len(cols)), np.float32)
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf: drop_overflow names its row
        np.divide(tmp, scale[..., cols], out=out, casting="same_kind")
    return out


def drop_overflow(unit: Unit, arrays: UnitArrays, cfg: JobConfig,
                  paths: list[str]) -> tuple[Unit, UnitArrays, int]:
    """Every value written, in every split, must be finite in float32.

    A value far outside the training range (1e39, or 1e300 in a validation row) scales to
    inf. That is an error naming file, row and column, or under --nan-policy drop the row
    is dropped and counted (owned rows only). Returns the unit, its arrays, rows dropped.
    """
    bad_x, bad_y = ~np.isfinite(arrays.x), ~np.isfinite(arrays.y)
    bad = bad_x.any(axis=1) | bad_y.any(axis=1)
    if not bad.any():
        return unit, arrays, 0
    if cfg.nan_policy != "drop":
        i = int(np.flatnonzero(bad)[0])
        col = cfg.window_features[int(np.argmax(bad_x[i]))] if bad_x[i].any() else cfg.targets[int(np.argmax(bad_y[i]))]
        raw = unit.values[i, cfg.columns.index(col)]
        raise InputError(
            f"{unit.label(i, paths)}: column {col!r} is {raw:g}, which is beyond float32 (about 3.4e38) once "
            "scaled with the training statistics; fix the value, or pass --nan-policy drop to drop such rows"
        )
    keep = ~bad
    kept = UnitArrays(x=arrays.x[keep], y=arrays.y[keep], t=arrays.t[keep], sid=arrays.sid[keep])
    return unit.subset(keep), kept, int((bad & unit.owned).sum())


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


def deal(perm: np.ndarray, shards: int, offset: int, *, block_size: int = 1) -> list[np.ndarray]:
    """Split a permutation over `shards` parts; `offset` rotates who gets what.

    A unit deals to as many shards as it fills blocks of `block_size` windows (at least one,
    at most all), in near-equal parts, so a shard writer loads only the units that give it
    about a block or more: with many small units, loads per shard stay near
    units x (windows per unit / block) / shards instead of every unit in every shard.
    """
    if not shards:
        return []
    k = int(np.clip(len(perm) // max(block_size, 1), 1, shards))
    parts = np.array_split(perm, k) + [perm[:0]] * (shards - k)
    return parts[-offset % shards :] + parts[: -offset % shards]


def shard_count(cfg: JobConfig, split: str) -> int:
    if split == BACKTEST:
        return cfg.eval_shards if cfg.backtest_every else 0
    return cfg.train_shards if split == "train" else cfg.eval_shards


def unit_rng(cfg: JobConfig, key: tuple[int, int]) -> np.random.Generator:
    """The unit's own seeded stream (independent of the worker that runs it)."""
    return np.random.default_rng([cfg.seed, key[0], key[1] + (1 << 40)])


def fallback_rows(unit: Unit, series: SeriesScaling | None) -> int:
    """Owned rows of series without training rows (scaled with the global statistics)."""
    if series is None or not len(unit):
        return 0
    return int((unit.owned & (series.rows_of_names(unit.series_names)[unit.series] == len(series.names))).sum())


def unit_windows(unit: Unit, arrays: UnitArrays, plan: Plan, cfg: JobConfig) -> tuple[list[np.ndarray], Counter]:
    """The unit's windows per split (in row order; a fourth list, the backtest's, with
    --backtest-every), and the counts of what was left out."""
    spec = cfg.window
    begins = unit.segment_begins(plan.max_gap)
    split = plan.boundaries.split_of(unit.time)
    per_split, dropped = unit_window_starts(unit.time, unit.owned, split, begins, spec, t0=plan.t_min, step=plan.step)
    counts: Counter = Counter(dropped)
    gaps = short_segment_gaps(unit.time, unit.series, unit.owned, begins, spec, step=plan.step)
    counts.update({f"short_segment_gap_steps.{k}": v for k, v in gaps.items()})
    if cfg.backtest_every:
        per_split.append(backtest_window_starts(
            unit.time, unit.owned, split, begins, spec, t0=plan.t_min, step=plan.step,
            test_start=plan.boundaries.test_start, every=cfg.backtest_every))
    if cfg.task != "regression":
        check_targets(unit, spec.target_index(np.sort(np.concatenate(per_split))), arrays.y, cfg, plan.kind)
    for split, starts in zip(WINDOW_SETS, per_split, strict=False):
        counts[f"windows.{split}"] += len(starts)
    return per_split, counts


def permuted(per_split: list[np.ndarray], rng: np.random.Generator):
    """(split, starts in seeded random order), lazily, split after split.

    Lazy on purpose: the caller draws from the same `rng` between splits (the shard
    offset, or a shard per record with --full-shuffle), and that order is what makes
    the dataset reproducible from the seed.
    """
    for split, starts in zip(WINDOW_SETS, per_split, strict=False):  # the backtest only when asked for
        yield split, starts[rng.permutation(len(starts))]
