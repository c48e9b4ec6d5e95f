"""Global scaling statistics: a mergeable float64 accumulator and the scaling it implies.

The accumulator follows tensorflow/transform's analyzers: framework-free numpy state
(count, mean, M2, min, max) merged pairwise with Chan et al.'s parallel update, so the
result does not depend on how a runner splits the data into bundles. Robust scaling
adds a mergeable quantile sketch (KLL-style compactors) that is exact until it holds
more than `sketch_k` values per level. `ScalingStatsFn` is the thin Beam wrapper.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from preprocessing.errors import InputError

QUANTILES = (0.25, 0.5, 0.75)


@dataclass
class QuantileSketch:
    """Mergeable approximate quantiles for C columns at once.

    levels[h] holds values of weight 2**h, each column sorted independently. When a
    level grows past k rows it keeps every other value (deterministic offset) and
    promotes them to level h+1: rank error stays O(log(n/k)/k).
    """

    k: int
    levels: list[np.ndarray]

    @classmethod
    def empty(cls, columns: int, k: int = 4096) -> QuantileSketch:
        return cls(k=k, levels=[np.zeros((0, columns))])

    def add(self, values: np.ndarray) -> None:
        self.levels[0] = np.concatenate([self.levels[0], values])
        self._compact()

    def merge(self, other: QuantileSketch) -> None:
        for h, lv in enumerate(other.levels):
            if h >= len(self.levels):
                self.levels.append(lv.copy())
            else:
                self.levels[h] = np.concatenate([self.levels[h], lv])
        self._compact()

    def _compact(self) -> None:
        h = 0
        while h < len(self.levels):
            lv = self.levels[h]
            if len(lv) > 2 * self.k:
                lv = np.sort(lv, axis=0)
                keep_n = len(lv) - (len(lv) % 2)
                promoted = lv[:keep_n][(h % 2)::2]
                self.levels[h] = lv[keep_n:]
                if h + 1 == len(self.levels):
                    self.levels.append(np.zeros((0, lv.shape[1])))
                self.levels[h + 1] = np.concatenate([self.levels[h + 1], promoted])
            h += 1

    def quantiles(self, qs: Iterable[float]) -> np.ndarray:
        """[len(qs), C] quantiles with linear interpolation (numpy's default when exact)."""
        qs = np.asarray(list(qs), dtype=np.float64)
        values = np.concatenate(self.levels)
        weights = np.concatenate([np.full(len(lv), 2.0**h) for h, lv in enumerate(self.levels)])
        if len(values) == 0:
            return np.full((len(qs), values.shape[1]), np.nan)
        out = np.empty((len(qs), values.shape[1]))
        for c in range(values.shape[1]):
            order = np.argsort(values[:, c], kind="stable")
            v = values[order, c]
            w = weights[order]
            # Position of each item in the expanded sorted sample, as numpy's 'linear' method.
            pos = np.cumsum(w) - w / 2.0 - 0.5 if len(self.levels) > 1 else np.arange(len(v), dtype=np.float64)
            target = qs * (w.sum() - 1)
            out[:, c] = np.interp(target, pos, v)
        return out


STATS_BLOCK_ROWS = 1 << 14


@dataclass
class ColumnStats:
    """Running statistics for C columns (float64), mergeable in any order.

    Means are kept relative to a per-column `shift` (the first value seen) because a
    column like a Unix time or a price near 1e9 with a spread of 5 would otherwise lose
    ~1e-7 of its mean to float64 rounding in every merge, and the merge term
    delta**2 * na * nb / n amplifies that error into the variance.
    """

    count: int
    shift: np.ndarray
    mean_rel: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    sketch: QuantileSketch | None = None

    @classmethod
    def empty(cls, columns: int, *, quantiles: bool = False) -> ColumnStats:
        return cls(
            count=0,
            shift=np.zeros(columns),
            mean_rel=np.zeros(columns),
            m2=np.zeros(columns),
            min=np.full(columns, np.inf),
            max=np.full(columns, -np.inf),
            sketch=QuantileSketch.empty(columns) if quantiles else None,
        )

    @classmethod
    def of(cls, values: np.ndarray, *, quantiles: bool = False) -> ColumnStats:
        """Statistics of rows [n, C]: two-pass within blocks of STATS_BLOCK_ROWS rows, merged.

        Each block is worked on as a contiguous [C, rows] copy that stays in the CPU's cache:
        reductions along a contiguous axis are pairwise sums, and the whole pass is about 6x
        faster than reducing a row-major [n, C] over its rows (0.02 s for 1M x 7).
        """
        values = np.asarray(values, dtype=np.float64)
        if len(values) > STATS_BLOCK_ROWS:
            out = cls.of(values[:STATS_BLOCK_ROWS])
            for lo in range(STATS_BLOCK_ROWS, len(values), STATS_BLOCK_ROWS):
                out.merge(cls.of(values[lo:lo + STATS_BLOCK_ROWS]))
            if quantiles:  # the sketch sees the rows at once, as before
                out.sketch = QuantileSketch.empty(values.shape[1])
                out.sketch.add(values)
            return out
        out = cls.empty(values.shape[1], quantiles=quantiles)
        if len(values) == 0:
            return out
        out.count = len(values)
        rel = np.array(values.T, order="C")  # the block's one copy, reused in place
        out.min = rel.min(axis=1)
        out.max = rel.max(axis=1)
        out.shift = rel[:, 0].copy()
        rel -= out.shift[:, None]
        out.mean_rel = rel.mean(axis=1)
        rel -= out.mean_rel[:, None]
        with np.errstate(over="ignore"):  # overflow is reported by scaling_from_stats
            out.m2 = np.square(rel, out=rel).sum(axis=1)
        if out.sketch is not None:
            out.sketch.add(values)
        return out

    def merge(self, other: ColumnStats) -> ColumnStats:
        """Chan et al.'s pairwise update; returns self (mutated) for chaining."""
        if other.count == 0:
            return self
        if self.count == 0:
            self.count, self.shift = other.count, other.shift.copy()
            self.mean_rel, self.m2 = other.mean_rel.copy(), other.m2.copy()
        else:
            n = self.count + other.count
            delta = ((other.shift - self.shift) + other.mean_rel) - self.mean_rel
            self.mean_rel = self.mean_rel + delta * (other.count / n)
            with np.errstate(over="ignore", invalid="ignore"):
                self.m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
            self.count = n
        self.min = np.minimum(self.min, other.min)
        self.max = np.maximum(self.max, other.max)
        if self.sketch is not None and other.sketch is not None:
            self.sketch.merge(other.sketch)
        return self

    @property
    def mean(self) -> np.ndarray:
        return self.shift + self.mean_rel

    @property
    def var(self) -> np.ndarray:
        """Population variance (ddof=0, as sklearn's StandardScaler)."""
        return self.m2 / self.count if self.count else np.full_like(self.m2, np.nan)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)


def merge_all(stats: Iterable[ColumnStats], columns: int, *, quantiles: bool = False) -> ColumnStats:
    acc = ColumnStats.empty(columns, quantiles=quantiles)
    for s in stats:
        acc.merge(s)
    return acc


@dataclass(frozen=True)
class Scaling:
    """x_scaled = (x - center) / scale per column; scale 1, center 0 means unscaled."""

    center: np.ndarray
    scale: np.ndarray

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (values - self.center) / self.scale

    def invert(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.center


MAX_ABS = 1e154  # a larger value's square overflows float64, and with it the variance


def first_too_large(values: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first value whose square overflows float64, or None."""
    if values.size == 0 or (np.fmax.reduce(values, axis=None) <= MAX_ABS
                            and np.fmin.reduce(values, axis=None) >= -MAX_ABS):
        return None  # the common case, without a temporary the size of the block
    big = np.abs(values) > MAX_ABS
    if not big.any():
        return None
    r, c = np.argwhere(big)[0]
    return int(r), int(c)


def scaling_from_stats(
    stats: ColumnStats,
    columns: tuple[str, ...],
    *,
    kind: str,
    unscaled: Iterable[str] = (),
    quantiles: np.ndarray | None = None,
    source: str = "the input",
    targets: Iterable[str] = (),
) -> Scaling:
    """Center and scale per column; a constant column is an error unless left unscaled, and a
    constant target is an error: there is nothing to forecast (leaving it unscaled cures nothing).

    `source` names the input (its --input patterns) in the errors."""
    unscaled, targets = set(unscaled), set(targets)
    if stats.count == 0:
        raise InputError(
            "the training split has no rows after validation; check --train-fraction/--val-start "
            "and the drop counts in the log"
        )
    center = np.zeros(len(columns))
    scale = np.ones(len(columns))
    for i, col in enumerate(columns):
        if not (np.isfinite(stats.mean[i]) and np.isfinite(stats.m2[i])):
            raise InputError(
                f"column {col!r} of {source}: values up to {max(abs(stats.min[i]), abs(stats.max[i])):.3g} overflow "
                "float64 when squared; rescale that column in the input (e.g. change its units)"
            )
        if col in unscaled:
            continue
        if kind == "standard":
            c, s = stats.mean[i], stats.std[i]
        elif kind == "minmax":
            c, s = stats.min[i], stats.max[i] - stats.min[i]
        elif kind == "robust":
            assert quantiles is not None, "robust scaling needs quantiles"
            c, s = quantiles[1, i], quantiles[2, i] - quantiles[0, i]
        else:
            raise ValueError(f"unknown scaler {kind!r}")
        if not s > 0 and col in targets and stats.min[i] == stats.max[i]:
            raise InputError(
                f"target {col!r} of {source} does not vary: every one of its {stats.count:,} training rows is "
                f"{stats.min[i]:g}, so there is nothing to forecast; check that --targets names the intended "
                "column and that the training range (--train-fraction, --val-start) covers a time it changes"
            )
        if not s > 0:
            raise InputError(
                f"column {col!r} of {source} has zero spread on its {stats.count:,} training rows "
                f"(min = max = {stats.min[i]:g} or IQR 0 for robust); drop it from --features/--targets "
                f"or pass --unscaled {col} to keep it unscaled"
            )
        center[i], scale[i] = c, s
    return Scaling(center=center, scale=scale)
