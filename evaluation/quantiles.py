"""Scores of quantile forecasts as a mergeable accumulator, and split-conformal calibration.

The first pieces of issue #28 (quantile outputs), numpy only like the rest of `evaluation/`:

  pinball loss   for level tau and error u = y - q: max(tau·u, (tau - 1)·u); its mean over the
                 levels is the quantile loss NeuralForecast and GluonTS train and report
  CRPS           approximated from the levels as 2 × the mean pinball loss over them (the CRPS
                 is 2 ∫ pinball_tau dtau; the levels are its quadrature points)
  intervals      each pair of levels (tau, 1 - tau) with tau < 0.5 is a central interval of
                 nominal coverage 1 - 2·tau: its empirical coverage (y inside, bounds included),
                 mean width, and mean interval score (Gneiting & Raftery 2007; the M4
                 competition's MSIS before scaling): width + (2/alpha)·(distance outside), alpha =
                 1 - nominal. Lower is better; it compares intervals of different coverage,
                 which width alone cannot (a wider naive interval over-covering is not better)

Forecast arrays are (windows, target rows, targets, levels), targets (windows, target rows,
targets), as in accumulators.py.
"""

from __future__ import annotations

import numpy as np


def point_index(levels) -> int:
    """The output channel of a quantile model that is its point forecast: the 0.5 level, else the
    mean head, one more channel after the levels (trained with the root mean squared error)."""
    levels = [float(q) for q in levels]
    return levels.index(0.5) if 0.5 in levels else len(levels)


def mean_head(levels) -> bool:
    """Whether a quantile model has a mean head: when 0.5 is not among its levels."""
    return bool(levels) and 0.5 not in [float(q) for q in levels]


def point_level(levels) -> float | str:
    """What the point forecast is, as eval.json and config.json name it: 0.5, or "mean"."""
    return "mean" if mean_head(levels) else 0.5


def central_intervals(levels) -> list[tuple[int, int]]:
    """(lower, upper) level indices of every central interval the sorted levels hold."""
    levels = [float(x) for x in levels]
    out = []
    for i, lo in enumerate(levels):
        if lo < 0.5:
            for j, hi in enumerate(levels):
                if abs(hi - (1 - lo)) < 1e-9:
                    out.append((i, j))
    return out


def pinball(y: np.ndarray, q: np.ndarray, levels) -> np.ndarray:
    """Elementwise pinball loss: y (..., ) against q (..., Q) at `levels` (Q,) -> (..., Q)."""
    tau = np.asarray(levels, np.float64)
    u = np.asarray(y, np.float64)[..., None] - np.asarray(q, np.float64)
    return np.maximum(tau * u, (tau - 1) * u)


class QuantileSums:
    """Per target row: pinball sums per level, and hits and widths per central interval."""

    def __init__(self, steps: int, levels) -> None:
        self.levels = tuple(float(x) for x in levels)
        if list(self.levels) != sorted(self.levels) or not all(0 < x < 1 for x in self.levels):
            raise ValueError(f"quantile levels must be sorted and inside (0, 1), got {list(self.levels)}")
        self.intervals = central_intervals(self.levels)
        q, k = len(self.levels), len(self.intervals)
        self.pinball = np.zeros((steps, q))
        self.below = np.zeros((steps, q))  # targets at or below each level: its observed frequency
        self.covered = np.zeros((steps, k))
        self.width = np.zeros((steps, k))
        self.score = np.zeros((steps, k))  # interval score sums
        self.n = np.zeros(steps, np.int64)

    def add(self, y: np.ndarray, q: np.ndarray) -> QuantileSums:
        y = np.asarray(y, np.float64)
        q = np.asarray(q, np.float64)
        if q.shape != (*y.shape, len(self.levels)) or y.shape[1] != len(self.n):
            raise ValueError(f"quantiles {q.shape} do not fit targets {y.shape} with {len(self.levels)} levels "
                             f"and {len(self.n)} target rows")
        self.pinball += pinball(y, q, self.levels).sum(axis=(0, 2))
        self.below += (y[..., None] <= q).sum(axis=(0, 2))
        for k, (lo, hi) in enumerate(self.intervals):
            inside = (y >= q[..., lo]) & (y <= q[..., hi])
            self.covered[:, k] += inside.sum(axis=(0, 2))
            self.width[:, k] += (q[..., hi] - q[..., lo]).sum(axis=(0, 2))
            alpha = 1 - (self.levels[hi] - self.levels[lo])
            outside = np.maximum(q[..., lo] - y, 0) + np.maximum(y - q[..., hi], 0)
            self.score[:, k] += (q[..., hi] - q[..., lo] + (2 / alpha) * outside).sum(axis=(0, 2))
        self.n += y.shape[0] * y.shape[2]
        return self

    def merge(self, other: QuantileSums) -> QuantileSums:
        for name in ("pinball", "below", "covered", "width", "score", "n"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def _report(self, pinball_sums, below, covered, width, score, n, scale):
        mean = pinball_sums / n
        out = {"pinball": [float(x) for x in mean], "mean_pinball": float(mean.mean()),
               "crps": float(2 * mean.mean()),
               "observed": [float(b / n) for b in below]}  # per level: a calibrated level tau observes ~tau
        if scale:
            out["scaled_mean_pinball"] = out["mean_pinball"] / scale
        out["intervals"] = [{"lower": self.levels[lo], "upper": self.levels[hi],
                             "nominal": round(self.levels[hi] - self.levels[lo], 10),
                             "coverage": float(c / n), "mean_width": float(w / n), "interval_score": float(sc / n)}
                            for (lo, hi), c, w, sc in zip(self.intervals, covered, width, score, strict=True)]
        return out

    def result(self, distances=None, scale: float | None = None) -> dict:
        """Pooled over every step (and per step when `distances` names more than one)."""
        n = int(self.n.sum())
        out = {"levels": list(self.levels),
               **self._report(self.pinball.sum(axis=0), self.below.sum(axis=0), self.covered.sum(axis=0),
                              self.width.sum(axis=0), self.score.sum(axis=0), n, scale)}
        if distances is not None and len(distances) > 1:
            out["per_step"] = [{"step": int(d), **self._report(self.pinball[i], self.below[i], self.covered[i],
                                                                 self.width[i], self.score[i], int(self.n[i]), scale)}
                               for i, d in enumerate(distances)]
        return out


def conformal_ranks(n: int, levels) -> tuple[np.ndarray, list[float]]:
    """The 1-based rank, among n sorted calibration residuals y - q, of each level's split-conformal
    shift, and the levels n is too small to guarantee.

    The finite-sample rule of split-conformal prediction (Vovk et al. 2005; per bound as in
    conformalized quantile regression, Romano, Patterson & Candès 2019): an upper level (tau > 0.5)
    takes the ceil((n+1)·tau)-th smallest residual, so that a new target exchangeable with the n
    falls at or below it with probability at least tau; a lower level (tau < 0.5) takes the
    floor((n+1)·tau)-th, so that one falls below it with probability at most tau. Every central
    interval then covers at least its nominal share (and at most 2/(n+1) more). The median takes
    the plain ceil(n/2)-th (it bounds nothing). A rank outside 1..n means n is too small for the
    guarantee (the exact rule would shift that level to infinity): it is clipped and the level named.
    """
    tau = np.asarray(levels, np.float64)
    eps = 1e-9  # (n+1)·tau computed in floating point may land a hair off an integer
    rank = np.where(tau > 0.5, np.ceil((n + 1) * tau - eps),
                    np.where(tau < 0.5, np.floor((n + 1) * tau + eps), np.ceil(n * tau - eps))).astype(int)
    short = [float(t) for t, k in zip(tau, rank, strict=True) if k < 1 or k > n]
    return np.clip(rank, 1, max(n, 1)), short


def conformal_min_targets(tau: float) -> int:
    """The fewest calibration targets whose `conformal_ranks` rank for level tau lies within 1..n:
    1/tau - 1 for a lower level ((n+1)·tau >= 1), tau/(1 - tau) for an upper one ((n+1)·tau <= n)."""
    return int(np.ceil(1 / min(tau, 1 - tau) - 1 - 1e-9))


def conformal_shifts(y: np.ndarray, q: np.ndarray, levels) -> np.ndarray:
    """Split-conformal shift of each level at each target row and target, from calibration windows:
    the `conformal_ranks` residual y - q_tau over the windows, so that q_tau + s_tau bounds a new
    target at that step as a level tau should (with ties aside, a fraction rank/n of the n windows'
    targets lies at or below it). Per step as in multi-horizon conformal forecasting (Stankeviciute et
    al. 2021; Darts' ConformalModel calibrates "each step in the horizon separately"):
    a far step's errors are wider than a near one's, and one shift pooled over the steps would widen the
    near steps' intervals and leave the far ones short. y (W, rows, T), q (W, rows, T, Q) -> (rows, T, Q)."""
    y, q = np.asarray(y, np.float64), np.asarray(q, np.float64)
    if q.shape != (*y.shape, len(levels)):
        raise ValueError(f"conformal_shifts: levels {q.shape} do not fit targets {y.shape} x {len(levels)} levels")
    n = len(y)
    if n == 0:
        raise ValueError("conformal calibration needs at least one calibration target")
    r = np.sort(y[..., None] - q, axis=0)
    rank, _ = conformal_ranks(n, levels)
    return np.take_along_axis(r, np.broadcast_to(rank - 1, (1, *r.shape[1:])), axis=0)[0]


def calibrate(q: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Quantiles shifted per level, sorted again along the level axis so they never cross."""
    return np.sort(np.asarray(q, np.float64) + np.asarray(shifts, np.float64), axis=-1)
