"""Reading an LR range test: where the loss falls, bottoms out and diverges (numpy only).

The sweep raises the LR exponentially one training step at a time (Smith, 2017). Reading it
from the training loss of each step's own batch is fragile: each point is a different batch,
so `argmin` lands wherever one batch happened to be easy, and the verdict flips with the
seed. Here every point is the loss on one fixed evaluation batch, smoothed with an EMA, and
a verdict is given only when the curve shows a valley: the loss fell by `VALLEY_DROP` from its
start, or below the loss of predicting the train mean on the same batch (the mean level: a
hard target's loss falls little but does go below it, an unrelated target's never does). A
sweep without a valley is "inconclusive", not a learning-rate problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EMA = 0.7  # weight of the past in the smoothed curve
DIVERGE = 4.0  # smoothed loss above this multiple of its minimum: the sweep has diverged
VALLEY_DROP = 0.2  # the smoothed loss must fall at least this fraction below its start,
BELOW_MEAN = 0.02  # or this fraction below the mean level (a hard target falls little, but below it)
TOO_HIGH = 3.0  # a configured LR above this multiple of the valley's bottom is too high
TOO_LOW = 1000.0  # ... below the bottom divided by this is too low (where the loss had not moved)

# exponential sweep ranges per optimizer: Adam's step is normalized, SGD's scales with the gradient
SWEEP_RANGE = {"adam": (1e-6, 1.0), "adamw": (1e-6, 1.0), "sgd": (1e-5, 10.0)}


@dataclass(frozen=True)
class Sweep:
    """What one LR range test shows."""

    lrs: np.ndarray
    smooth: np.ndarray  # EMA of the evaluation loss; inf where it was not finite
    start: float  # smoothed loss before the LR did anything (the first point)
    lr_min: float  # LR at the lowest smoothed loss
    low: float  # the lowest smoothed loss
    lr_diverged: float | None  # first LR past the bottom where the loss exploded or became NaN
    level: float | None = None  # the mean level: loss of predicting the train mean on the same batch

    @property
    def has_valley(self) -> bool:
        below_mean = self.level is not None and self.low < (1 - BELOW_MEAN) * self.level
        return self.low < (1 - VALLEY_DROP) * self.start or below_mean

    @property
    def suggested(self) -> float:
        """One decade under the bottom: the usual safe peak LR (at the sweep's batch)."""
        return self.lr_min / 10

    def loss_at(self, lr: float) -> float:
        """The smoothed loss the sweep had reached at `lr` (its start below the sweep's range)."""
        i = int(np.searchsorted(self.lrs, lr, side="right")) - 1
        return self.start if i < 0 else float(self.smooth[min(i, len(self.smooth) - 1)])


def ema(values: np.ndarray, beta: float = EMA) -> np.ndarray:
    """Exponential moving average; non-finite inputs stay inf so they read as divergence."""
    out, acc = [], None
    for v in values:
        if not math.isfinite(v):
            out.append(math.inf)
            continue
        acc = v if acc is None else beta * acc + (1 - beta) * v
        out.append(acc)
    return np.array(out, dtype=np.float64)


def diverged(smooth: np.ndarray) -> bool:
    """The stopping rule applied during the sweep: NaN/inf, or DIVERGE x the lowest so far."""
    finite = smooth[np.isfinite(smooth)]
    return len(finite) < len(smooth) or (len(finite) > 1 and finite[-1] > DIVERGE * finite.min())


def read_sweep(lrs: np.ndarray, losses: np.ndarray, level: float | None = None) -> Sweep:
    """The valley and divergence of a sweep from its raw evaluation losses (and the batch's mean level)."""
    lrs = np.asarray(lrs, dtype=np.float64)[: len(losses)]
    smooth = ema(np.asarray(losses, dtype=np.float64))
    finite = np.isfinite(smooth)
    if not finite.any():
        return Sweep(lrs, smooth, math.inf, float(lrs[0]), math.inf, float(lrs[0]), level)
    i_min = int(np.argmin(np.where(finite, smooth, np.inf)))
    low = float(smooth[i_min])
    past = np.flatnonzero((~finite | (smooth > DIVERGE * low)) & (np.arange(len(smooth)) > i_min))
    return Sweep(lrs, smooth, float(smooth[0]), float(lrs[i_min]), low,
                 float(lrs[past[0]]) if len(past) else None, level)


def judge(sweep: Sweep, lr: float) -> tuple[str, str]:
    """(status, reason) for a configured LR at the sweep's batch: ok | too_high | too_low | inconclusive."""
    if sweep.lr_diverged is not None and lr >= sweep.lr_diverged:
        return "too_high", f"the sweep's loss diverged from LR {sweep.lr_diverged:.2g}, at or below this LR"
    if not sweep.has_valley:
        level = f" nor {BELOW_MEAN:.0%} below the mean level ({sweep.level:.3g})" if sweep.level is not None else ""
        return "inconclusive", (f"the loss never fell {VALLEY_DROP:.0%} below its start ({sweep.start:.3g} -> lowest "
                                f"{sweep.low:.3g}){level}, so the sweep shows no valley to judge an LR by")
    if lr > TOO_HIGH * sweep.lr_min:
        return "too_high", (f"above the valley: the loss is lowest at LR {sweep.lr_min:.2g} and rises again beyond "
                            f"(loss {sweep.loss_at(lr):.3g} at this LR vs {sweep.low:.3g} at the bottom)")
    moved = sweep.loss_at(lr) < (1 - VALLEY_DROP / 4) * sweep.start
    if lr < sweep.lr_min / TOO_LOW and not moved:
        return "too_low", (f"{sweep.lr_min / lr:.0f}x below the valley's bottom (LR {sweep.lr_min:.2g}); the sweep's "
                           f"loss had not moved at this LR ({sweep.loss_at(lr):.3g} vs {sweep.start:.3g} at the start)")
    return "ok", f"inside the valley (bottom at LR {sweep.lr_min:.2g})"
