"""`python -m benchmarks.calibration_validation --data D --members J0,J1,J2`: which conformal
calibration holds after the range it was fitted on, judged on validation only.

The validation windows are ordered by time and cut at `--fraction` of their times: the levels of
the members' mean (uncalibrated quantile runs, e.g. `--quantiles 0.1,0.9 --no-evaluate`) are
calibrated on the earlier part and the 10-90% interval's coverage and mean width (scaled units)
are measured on the later part, as a test range follows the validation range. Printed for no
calibration, one shift per level pooled over the horizon steps (the rule before 2026-12-07), and
a shift per level and step (the rule now, `evaluation/quantiles.py` `conformal_shifts`). The test
split is never read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np


def coverage(y: np.ndarray, q: np.ndarray, levels) -> dict:
    """The outermost central interval's coverage and mean width, as eval.json scores them."""
    from training.calibration import coverage_report

    widest = coverage_report(y, q, levels)[0]
    return {"coverage": widest["coverage"], "width": widest["mean_width"]}


def compare(y: np.ndarray, q: np.ndarray, t: np.ndarray, levels, fraction: float) -> dict:
    """Calibrate on the windows up to the `fraction` quantile of their times, measure on the rest."""
    from evaluation.quantiles import calibrate, conformal_shifts

    cut = np.quantile(t, fraction)
    fit, held = t <= cut, t > cut
    per_step = conformal_shifts(y[fit], q[fit], levels)
    flat = y[fit].reshape(-1, 1, 1)  # every step's target as one window: one shift per level
    pooled = conformal_shifts(flat, q[fit].reshape(len(flat), 1, 1, -1), levels)[0, 0]
    return {"windows": [int(fit.sum()), int(held.sum())], "none": coverage(y[held], q[held], levels),
            "pooled": coverage(y[held], calibrate(q[held], pooled), levels),
            "per_step": coverage(y[held], calibrate(q[held], per_step), levels)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the dataset the members were trained on")
    p.add_argument("--members", required=True, help="comma-separated job dirs of uncalibrated quantile runs")
    p.add_argument("--fraction", type=float, default=0.5, help="share of the validation time range to fit on")
    args = p.parse_args(argv)
    from training.calibration import validation_levels
    from training.data import load_manifest
    from training.ensemble import MeanOfMembers, load_members, member_quantiles

    dirs = [d for d in args.members.split(",") if d]
    manifest, levels = load_manifest(args.data), member_quantiles(dirs)
    model = MeanOfMembers(load_members(dirs, manifest))
    y, q, t = validation_levels(model, manifest, args.data, levels)
    print(json.dumps(compare(y, q, t, levels, args.fraction)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
