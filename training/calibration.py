"""Checking and fixing a quantile model's calibration on the validation windows (issue #28).

A level tau is calibrated when about a fraction tau of the targets fall at or below it. The
check computes each central interval's coverage on the validation windows and says when it
is off by more than COVERAGE_TOLERANCE. `--calibrate` fixes it split-conformal style
(evaluation/quantiles.py `conformal_shifts`): each level is shifted, in scaled units and at each
target row (horizon step) and target on its own, by its residual quantile over the n validation
windows with the finite-sample rank (an upper level's ceil((n+1)·tau)-th residual, a lower level's
floor((n+1)·tau)-th), so each central interval covers at least its nominal share of targets
exchangeable with them at every step, and the shifted levels are sorted again, so they never
cross. The export and eval.json then use the calibrated model.
"""

from __future__ import annotations

import logging

import numpy as np

from contract.logs import import_tensorflow
from evaluation.quantiles import (
    QuantileSums,
    conformal_min_targets,
    conformal_ranks,
    conformal_shifts,
)
from evaluation.quantiles import calibrate as shifted

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)

log = logging.getLogger("seqscale.train")

COVERAGE_TOLERANCE = 0.05  # "off by more than a few points"
MAX_WINDOWS = 200_000  # validation windows whose residuals are kept for the shifts (the first ones)


class Calibrated(tf.Module):
    """model(x) with each level shifted and the levels sorted again: a callable model the export
    and the evaluation use like the trained one."""

    def __init__(self, model, shifts) -> None:
        super().__init__()
        self.model = model
        self.shifts = tf.constant(np.asarray(shifts, np.float32))  # (target rows, targets, levels)

    def __call__(self, x, training: bool = False):  # noqa: ARG002 - the Keras call signature
        out = self.model(x, training=False)  # [batch, (H,) targets, levels (+ a mean head)]
        q = int(self.shifts.shape[-1])
        shifts = self.shifts if out.shape.rank == 4 else self.shifts[0]  # one target row: no H axis
        levels = tf.sort(out[..., :q] + shifts, axis=-1)
        return tf.concat([levels, out[..., q:]], axis=-1)  # a mean head's channel stays as it is


def validation_levels(model, manifest, data_dir: str, levels, *, limit: int = MAX_WINDOWS):
    """(targets [W, rows, T], quantiles [W, rows, T, Q], times of the last inputs [W]) of up to `limit`
    validation windows, scaled units."""
    from training.evaluate import batches

    ys, qs, ts, n = [], [], [], 0
    for _, y, q, _, t in batches(model, manifest, data_dir, "val"):
        y = y.reshape(len(y), -1, len(manifest.targets))
        ys.append(y)
        qs.append(q.reshape(*y.shape, -1)[..., :len(levels)])  # the levels (a mean head's channel after them)
        ts.append(t)
        n += len(y)
        if n >= limit:
            break
    return tuple(np.concatenate(a)[:limit] for a in (ys, qs, ts))


def coverage_report(y: np.ndarray, q: np.ndarray, levels) -> list[dict]:
    """Each central interval's nominal and empirical coverage."""
    return QuantileSums(y.shape[1], levels).add(y, q).result()["intervals"]


def miscalibrated(intervals: list[dict]) -> list[str]:
    """One sentence per interval whose coverage is off by more than COVERAGE_TOLERANCE."""
    return [f"the {i['lower']:g}-{i['upper']:g} interval covered {i['coverage']:.1%} of the validation targets "
            f"(nominal {i['nominal']:.0%})" for i in intervals if abs(i["coverage"] - i["nominal"]) > COVERAGE_TOLERANCE]


def calibrate(model, manifest, data_dir: str, levels) -> tuple[Calibrated, dict]:
    """The calibrated model and what calibration did: shifts (scaled units, [target rows][targets][levels])
    and validation coverage before and after."""
    y, q, _ = validation_levels(model, manifest, data_dir, levels)
    shifts = conformal_shifts(y, q, levels)
    _, short = conformal_ranks(len(y), levels)
    for tau in short:
        log.warning("quantiles: %s validation windows are too few to calibrate the %g level with a guarantee "
                    "(it needs at least %s): it is shifted to the extreme residual", f"{len(y):,}", tau,
                    f"{conformal_min_targets(tau):,}")
    after = shifted(q, shifts)
    return Calibrated(model, shifts), {
        "method": "split-conformal on the validation windows, per level, target row and target (scaled units)",
        "validation_windows": int(len(y)), "shifts": shifts.tolist(),
        "validation_before": coverage_report(y, q, levels), "validation_after": coverage_report(y, after, levels)}


def shift_summary(shifts: np.ndarray, levels) -> str:
    """Each level's shift, or its range over the steps and targets."""
    flat = shifts.reshape(-1, len(levels))
    return ", ".join(f"{tau:g}: {lo:+.4f}" if lo == hi else f"{tau:g}: {lo:+.4f}..{hi:+.4f}"
                     for tau, lo, hi in zip(levels, flat.min(axis=0), flat.max(axis=0), strict=True))


def check(model, manifest, data_dir: str, levels, *, fix: bool):
    """A quantile model's validation coverage: a warning when an interval is off by more than a few
    points, or, with `fix` (--calibrate), the calibrated model. Returns (the model to export and evaluate,
    what calibration did or None). A single run and an ensemble (whose mean is what is calibrated)
    both come here."""
    if not levels or not manifest.windows("val"):
        return model, None
    if fix:
        calibrated, done = calibrate(model, manifest, data_dir, levels)
        log.info("quantiles calibrated on %s validation windows: shifts %s (scaled units)",
                 f"{done['validation_windows']:,}", shift_summary(np.asarray(done["shifts"]), levels))
        return calibrated, done
    y, q, _ = validation_levels(model, manifest, data_dir, levels)
    for line in miscalibrated(coverage_report(y, q, levels)):
        log.warning("quantiles: %s; train with --calibrate to fix the levels on the validation windows "
                    "(split-conformal)", line)
    return model, None


def evaluate_served(served, plain, calibration: dict | None, manifest, data_dir: str, **kw) -> dict:
    """eval.json of the exported model (`served`); when it is `plain` calibrated, with the test
    range's coverage before calibration beside the calibrated report."""
    from training.evaluate import evaluate

    report = evaluate(served, manifest, data_dir, **kw)
    if calibration is not None:
        before = evaluate(plain, manifest, data_dir, **kw)
        report["quantiles"]["calibration"] = {**calibration, "test_before": before["quantiles"]["intervals"],
                                              "test_after": report["quantiles"]["intervals"],
                                              "test_before_observed": before["quantiles"]["observed"]}
    return report
