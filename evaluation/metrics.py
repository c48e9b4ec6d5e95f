"""Forecast metrics the way forecasters compare models: per horizon step, seasonal naive, MASE.

Numpy only. Targets and predictions are (windows, target rows, targets) in original units;
a window's target rows are `WindowSpec.target_distances` rows after its last input (1..H
for a target sequence, H alone otherwise).

  seasonal naive  y[T+d] forecast by y[T+d - m*ceil(d/m)]: the same time one season (or
                  the fewest whole seasons) before, read from the window's own inputs
  MASE            MAE / the in-sample MAE of the one-step seasonal naive forecast
                  (|y[t] - y[t-m]| over training rows): scale-free, < 1 beats it (Hyndman &
                  Koehler, 2006)
"""

from __future__ import annotations

import math

import numpy as np

from contract.seasons import season_length  # noqa: F401 - report.py's fm.season_length


def time_label(kind: str, tick: int) -> str:
    """A time tick as users read it: ISO-8601 for timestamps, the integer otherwise."""
    return str(np.datetime64(tick, "ns")) if kind == "timestamp" else str(tick)


def seasonal_positions(look_back: int, distances: np.ndarray, season: int) -> list[int] | None:
    """Input position holding each target row's seasonal naive value, or None if one is outside."""
    positions = []
    for d in distances:
        back = season * math.ceil(d / season) - d  # rows before the last input
        pos = look_back - 1 - back
        if not 0 <= pos < look_back:
            return None
        positions.append(int(pos))
    return positions


def as_rows(y: np.ndarray) -> np.ndarray:
    """(windows, targets) -> (windows, 1, targets); (windows, rows, targets) unchanged."""
    y = np.asarray(y, dtype=np.float64)
    return y[:, None, :] if y.ndim == 2 else y


def metrics(y: np.ndarray, p: np.ndarray, scale: float | None = None) -> dict[str, float]:
    err = np.asarray(p, np.float64) - np.asarray(y, np.float64)
    out = {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))), "mse": float(np.mean(err ** 2))}
    if scale:
        out["mase"] = out["mae"] / scale
    return out


def per_step(y: np.ndarray, p: np.ndarray, distances: np.ndarray, scale: float | None = None) -> list[dict]:
    """Metrics for each target row (horizon step), pooled over windows and targets."""
    y, p = as_rows(y), as_rows(p)
    return [{"step": int(d), **metrics(y[:, i], p[:, i], scale)} for i, d in enumerate(distances)]


def mase_scale(history: np.ndarray, season: int) -> float | None:
    """In-sample MAE of the one-step seasonal naive forecast from rows of target history.

    history: (windows, look_back) target values in original units (each window's inputs);
    every pair (t, t - season) inside a window counts, so overlapping windows weigh rows
    alike (each row pair appears in the same number of windows, barring the edges).
    """
    if history.shape[1] <= season:
        return None
    diffs = np.abs(history[:, season:] - history[:, :-season])
    scale = float(diffs.mean())
    return scale if scale > 0 else None
