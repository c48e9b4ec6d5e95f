"""Score mode's pure parts: which windows of a work unit are scored, cut as raw blocks, and scored.

The windows are the preprocessing job's: a window is owned by the unit owning its first row,
never crosses a series or a gap larger than the export's tolerance, and keeps the stride
anchored to the training data's time grid (the manifest's first time and step). A range
`--from/--to` scores every window whose targets all lie in it (its inputs may come before,
what a forecaster knew at the origin); `--split` scores the split's own windows, wholly
inside it, exactly as the job cut them for the trainer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from contract.manifest import Manifest
from contract.series_scaling import SeriesScaling
from evaluation import report as er
from evaluation.accumulators import RegressionAccumulator
from evaluation.quantiles import point_level
from prediction.inference import Block, as_rows
from preprocessing.clean import Unit
from preprocessing.errors import InputError
from preprocessing.window import backtest_window_starts, grid_phase_ok, owned_starts

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Range:
    """Targets in [start, end); `whole`: inputs too (a split's windows). `backtest_every`: the
    dataset's rolling-origin backtest instead (origins every that many steps over the test range
    starting at `start`, as the preprocessing job cut it)."""

    start: int | None
    end: int | None
    whole: bool = False
    backtest_every: int = 0

    def keep(self, first_input: np.ndarray, first_target: np.ndarray, last_target: np.ndarray) -> np.ndarray:
        ok = np.ones(len(first_input), bool)
        if self.start is not None:
            ok &= (first_input if self.whole else first_target) >= self.start
        if self.end is not None:
            ok &= last_target < self.end
        return ok


def unit_blocks(unit: Unit, m: Manifest, rng: Range, *, file_columns: tuple[str, ...], paths: list[str],
                known: frozenset[str] | None, batch: int) -> tuple[list[Block], Counter]:
    """The unit's scored windows as Blocks of at most `batch` windows (raw inputs, actual
    targets), and counts (windows scored, windows of series the export does not know)."""
    spec = m.window
    counts: Counter = Counter()
    if not len(unit):
        return [], counts
    begins = unit.segment_begins(m.max_gap)
    if rng.backtest_every:
        starts = backtest_window_starts(unit.time, unit.owned, m.split_boundaries.split_of(unit.time), begins, spec,
                                        t0=m.time_range[0], step=m.step, test_start=rng.start,
                                        every=rng.backtest_every)
    else:
        starts = owned_starts(unit.time, unit.owned, begins, spec)
        starts = starts[grid_phase_ok(unit.time[starts], t0=m.time_range[0], step=m.step, stride=spec.stride)]
        targets = spec.target_rows_of(starts).reshape(len(starts), spec.target_rows)  # [W, rows]
        starts = starts[rng.keep(unit.time[starts], unit.time[targets[:, 0]], unit.time[targets[:, -1]])]
    if known is not None and len(starts):
        ok = np.array([n in known for n in unit.series_names])[unit.series[starts]]
        counts["windows_skipped.unknown_series"] += int((~ok).sum())
        starts = starts[ok]
    counts["windows_scored"] += len(starts)
    x_cols = [file_columns.index(c) for c in m.file_features]
    y_cols = [file_columns.index(c) for c in m.targets]
    blocks = []
    for a in range(0, len(starts), batch):
        s = starts[a:a + batch]
        rows = spec.input_rows(s)  # [B, L]
        x = unit.values[rows][:, :, x_cols]
        big = np.abs(x) > FLOAT32_MAX
        if big.any():
            w, r, c = np.argwhere(big)[0]
            i = int(rows[w, r])
            raise InputError(f"{unit.label(i, paths)}: column {m.file_features[c]!r} is {x[w, r, c]:g}, which is "
                             "beyond float32 (about 3.4e38), the model's input type; fix the value or rescale the column")
        with np.errstate(over="ignore"):
            x32 = np.ascontiguousarray(x, dtype=np.float32)
        t = unit.time[rows]
        blocks.append(Block(series=np.array(unit.series_names, dtype=object)[unit.series[s]], origin=t[:, -1].copy(),
                            x=x32, time=t, actual=unit.values[spec.target_rows_of(s).reshape(len(s), spec.target_rows)][:, :, y_cols]))
    return blocks, counts


def target_scaling(m: Manifest, block: Block, series: SeriesScaling | None) -> tuple[np.ndarray, np.ndarray]:
    """[B, 1, targets] center and scale of each window's targets (its series' own with per-series scaling)."""
    if series is None:
        c = np.array([m.column(t).center for t in m.targets])
        s = np.array([m.column(t).scale for t in m.targets])
        return c[None, None, :], s[None, None, :]
    c, s = series.gather(series.rows_of_names(block.series), m.targets)
    return c[:, None, :], s[:, None, :]


class Scores:
    """Score mode's accumulator: the regression report's, and a quantile model's levels."""

    def __init__(self, plan: er.Plan, *, per_origin: bool = False, levels: tuple[float, ...] = ()) -> None:
        self.regression = RegressionAccumulator(plan.steps, per_origin=per_origin)
        self.quantiles = er.QuantileScores(plan, levels) if levels else None

    def merge(self, other: Scores) -> Scores:
        self.regression.merge(other.regression)
        if self.quantiles is not None:
            self.quantiles.merge(other.quantiles)
        return self

    def result(self, plan: er.Plan, time_kind: str) -> dict:
        report = er.regression_result(self.regression, plan, time_kind)
        if self.quantiles is not None:
            levels = self.quantiles.model.levels
            report["quantiles"] = self.quantiles.result(plan, point_level(levels))
        return report


def score_block(scores: Scores, plan: er.Plan, m: Manifest, block: Block, outputs: dict,
                series: SeriesScaling | None) -> Scores:
    """Add one block: model and baselines in original units, the model in scaled units too, and a
    quantile model's levels."""
    yo = as_rows(np.asarray(block.actual, np.float64))
    po = as_rows(np.asarray(outputs["predictions"], np.float64))
    idx = m.target_positions
    xo = None if idx is None else block.x[:, :, list(idx)].astype(np.float64)
    forecasts = er.baselines(plan, yo, xo)
    c, s = target_scaling(m, block, series)
    acc = scores.regression
    acc.add(yo, po, forecasts, y_scaled=(yo - c) / s, p_scaled=(po - c) / s,
            origins=block.origin if acc.origins is not None else None)
    if scores.quantiles is not None:
        q = np.asarray(outputs["quantiles"], np.float64)
        scores.quantiles.add(yo, q[:, None] if q.ndim == 3 else q, forecasts)
    return scores
