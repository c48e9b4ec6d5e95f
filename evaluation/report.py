"""The eval.json report: which baselines a dataset gets, their forecasts per batch, and the report
read from a RegressionAccumulator. Shared by the trainer's evaluation and seqscale-predict's
score mode, so both write the same numbers for the same windows.

A model is only useful if it beats the trivial forecasts: persistence (the target's last
observed value, when the target is also an input), the seasonal naive forecast (the same
time one season before, from the window's own inputs) and the training mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contract.manifest import Manifest
from evaluation import metrics as fm
from evaluation.accumulators import ClassificationAccumulator, RegressionAccumulator
from evaluation.quantiles import QuantileSums


@dataclass(frozen=True)
class Plan:
    """What a dataset's report holds, fixed before the first batch.

    season: rows per season (None when unknown); positions: the input row holding each target
    row's seasonal naive value (None when a window does not reach back a season); mase: the
    in-sample seasonal naive MAE and its season (None without target history).
    """

    distances: tuple[int, ...]
    season: int | None
    positions: tuple[int, ...] | None
    train_mean: tuple[float, ...]
    mase: float | None
    mase_season: int
    # the naive baselines' own error quantiles per target row, for their intervals: the standard
    # benchmark of interval forecasts; levels (Q,) and {baseline: ((Q,) per target row)}
    interval_levels: tuple[float, ...] = ()
    residuals: tuple[tuple[str, tuple[tuple[float, ...], ...]], ...] = ()
    # why a baseline or the seasonal MASE scale is missing: (name, sentence), in the report as "notes"
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def steps(self) -> int:
        return len(self.distances)


def plan(manifest: Manifest, *, history: np.ndarray | None = None, season: int = 0,
         mase: dict | None = None, levels: tuple[float, ...] = (), residuals: dict | None = None) -> Plan:
    """The report's plan: `history` is (windows, look_back) training inputs of the target in
    original units (for MASE), `season` the user's --season (0: from the data's step). `mase`
    ({"mae", "season"}, as `to_dict` wrote it beside the export) replaces `history` where the
    training data is not at hand (seqscale-predict)."""
    w = manifest.window
    distances = tuple(int(d) for d in w.target_distances)
    m = fm.season_length(manifest.time_kind, manifest.step, season)
    if mase is not None:
        scale, scale_season = mase.get("mae"), int(mase.get("season", 1))
    else:
        scale_season = m if history is not None and m and history.shape[1] > m else 1
        scale = fm.mase_scale(history, scale_season) if history is not None else None
    positions = None
    if m and manifest.target_positions is not None:
        found = fm.seasonal_positions(w.look_back, np.array(distances), m)
        positions = tuple(found) if found is not None else None
    if residuals is None and history is not None and levels:
        residuals = baseline_residuals(history, distances, m if positions is not None else None, levels)
    frozen = tuple((k, tuple(tuple(float(x) for x in row) for row in v)) for k, v in (residuals or {}).items())
    return Plan(distances, m, positions, tuple(float(manifest.column(t).mean) for t in manifest.targets),
                scale, scale_season, tuple(levels) if frozen else (), frozen,
                season_notes(w.look_back, distances, m, seasonal=manifest.target_positions is not None,
                             reached=positions is not None, mase_season=scale_season if scale else None)
                + interval_notes(levels, residuals, positions, w.look_back))


def interval_notes(levels, residuals: dict | None, positions, look_back: int) -> tuple[tuple[str, str], ...]:
    """Say why a naive baseline scored for its point forecast has no interval: its lag does not
    fit inside a training window, where its error quantiles are measured."""
    if not levels or residuals is None:
        return ()
    scored = ["persistence"] + (["seasonal_persistence"] if positions is not None else [])
    return tuple((f"{name}_interval", f"no interval: its lag does not fit inside a training window of {look_back} "
                  "rows, where its error quantiles are measured; a longer --look-back gives it one")
                 for name in scored if name not in residuals)


def season_notes(look_back: int, distances, season: int | None, *, seasonal: bool, reached: bool,
                 mase_season: int | None) -> tuple[tuple[str, str], ...]:
    """Say why the seasonal naive row is missing, or why MASE scales by the one-step naive MAE,
    when the data has a season the windows do not reach (a look-back not above it)."""
    if not season or season < 2:
        return ()
    need = max(season * math.ceil(d / season) - d for d in distances) + 1  # the look-back that reaches it
    notes = []
    if seasonal and not reached:
        notes.append(("seasonal_persistence", f"not scored: a window's {look_back} input rows do not reach one season "
                      f"({season} rows) before every target; --look-back {need} or more scores it"))
    if mase_season == 1:
        notes.append(("mase", f"MASE scales by the one-step naive forecast's MAE, not the seasonal one: the training "
                      f"windows' {look_back} rows are not longer than the season ({season} rows)"))
    return tuple(notes)


def baseline_residuals(history: np.ndarray, distances, season: int | None, levels) -> dict[str, list]:
    """Quantiles of persistence's and the seasonal naive forecast's errors over the training rows,
    per target row: the intervals of the standard naive benchmark. `history` is (windows,
    look_back) training values of the target; a baseline whose lag a window does not reach is left out."""
    out: dict[str, list] = {}
    lags = {"persistence": list(distances)}
    if season:
        lags["seasonal_persistence"] = [season * math.ceil(d / season) for d in distances]
    for name, per_step in lags.items():
        if max(per_step) >= history.shape[1]:
            continue
        out[name] = [np.quantile(history[:, lag:] - history[:, :-lag], list(levels)).tolist() for lag in per_step]
    return out


def to_dict(p: Plan, season: int = 0) -> dict:
    """What a scorer without the training data needs to rebuild the plan: the user's --season
    and the MASE scale (written beside the export as seqscale_evaluation.json)."""
    return {"season": int(season), "mase": {"mae": p.mase, "season": p.mase_season},
            "interval_baselines": {"levels": list(p.interval_levels), "residuals": {k: [list(r) for r in v]
                                                                                    for k, v in p.residuals}}}


def baselines(p: Plan, y: np.ndarray, xo: np.ndarray | None) -> dict[str, np.ndarray]:
    """Each baseline's forecast for a batch: `y` the targets as (windows, rows, targets), `xo`
    the target's inputs (windows, look_back, targets) in original units, None when the target
    is not an input."""
    out = {"train_mean": np.broadcast_to(np.array(p.train_mean), y.shape)}
    if xo is not None:
        out["persistence"] = np.repeat(xo[:, -1:, :], y.shape[1], axis=1)
        if p.positions is not None:
            out["seasonal_persistence"] = xo[:, list(p.positions), :]
    return out


def regression_result(acc: RegressionAccumulator, p: Plan, time_kind: str = "int") -> dict:
    """The report of every window added to `acc`: model (scaled and original units), each
    baseline, per step for a target sequence, per origin when accumulated."""
    scale = p.mase
    report = {
        "windows": int(acc.windows),
        "model": {"scaled": acc.scaled.metrics(), "original": acc.model.metrics(scale)},
        "baselines": {},
        "mase_scale": {"season": p.mase_season, "mae": scale} if scale else None,
    }
    if "seasonal_persistence" in acc.baselines:
        report["season"] = p.season
    if p.notes:
        report["notes"] = dict(p.notes)
    for name, sums in acc.baselines.items():
        report["baselines"][name] = {"original": sums.metrics(scale)}
    if p.steps > 1:
        report["model"]["per_step"] = acc.model.per_step(p.distances, scale)
        for name, sums in acc.baselines.items():
            report["baselines"][name]["per_step"] = sums.per_step(p.distances, scale)
    rm = report["model"]["original"]["rmse"]
    for b in report["baselines"].values():
        b["model_rmse_vs_baseline"] = rm / b["original"]["rmse"] if b["original"]["rmse"] else None
    if acc.origins is not None:
        report["per_origin"] = acc.origins.result(time_kind)
    return report


def classification_predictions(manifest: Manifest, p: np.ndarray) -> tuple[np.ndarray, int]:
    """(predicted class per window, the majority class) for a binary or multiclass model's outputs."""
    if manifest.task == "binary":
        return (p.reshape(len(p)) >= 0.5).astype(np.int64), int(manifest.column(manifest.targets[0]).mean >= 0.5)
    return p.argmax(axis=-1), 0


class QuantileScores:
    """A quantile model's levels and the naive baselines' intervals on the same windows."""

    def __init__(self, p: Plan, levels) -> None:
        self.model = QuantileSums(p.steps, levels)
        same = tuple(p.interval_levels) == tuple(float(x) for x in levels)
        self.residuals = {k: np.asarray(v) for k, v in p.residuals} if same else {}
        self.baselines = {k: QuantileSums(p.steps, levels) for k in self.residuals}

    def add(self, y: np.ndarray, q: np.ndarray, forecasts: dict[str, np.ndarray]) -> QuantileScores:
        """y (W, rows, T), q (W, rows, T, Q) in original units; `forecasts`: baselines(plan, ...)."""
        self.model.add(y, q)
        for name, sums in self.baselines.items():
            if name in forecasts:  # residual quantiles (rows, Q) around the baseline's point forecast
                sums.add(y, forecasts[name][..., None] + self.residuals[name][None, :, None, :])
        return self

    def merge(self, other: QuantileScores) -> QuantileScores:
        self.model.merge(other.model)
        for name, sums in self.baselines.items():
            sums.merge(other.baselines[name])
        return self

    def result(self, p: Plan, point_level: float) -> dict:
        out = {"point_level": point_level, **self.model.result(p.distances, scale=p.mase)}
        if self.baselines:
            out["baselines"] = {k: {"method": "the baseline plus quantiles of its own errors on the training rows",
                                    **v.result(p.distances, scale=p.mase)} for k, v in self.baselines.items()}
        return out


__all__ = ["ClassificationAccumulator", "Plan", "QuantileScores", "RegressionAccumulator", "baselines", "classification_predictions",
           "plan", "regression_result"]
