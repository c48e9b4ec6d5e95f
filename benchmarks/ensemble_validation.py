"""`python -m benchmarks.ensemble_validation --data D --members J0,J1,J2`: does averaging runs help, on validation?

The validation split only (the test split is never read): each member's export is run on every
validation window, and the mean squared error in scaled units (the trainer's validation loss
for a point model) is printed for each member and for the mean of their forecasts, which is what
`seqscale-ensemble` exports. Use it on runs that differ only in `--seed` to decide whether an
ensemble is worth its cost before any test range is read.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np


def member_forecasts(data: str, job_dirs: list[str], split: str = "val") -> tuple[np.ndarray, list[np.ndarray]]:
    """(targets, each member's point forecasts) over every window of `split`, scaled units."""
    from contract.logs import import_tensorflow
    from training.data import load_manifest
    from training.evaluate import collect

    tf = import_tensorflow()  # without its C++ start-up lines
    manifest = load_manifest(data)
    preds, y = [], None
    for d in job_dirs:
        model = tf.saved_model.load(posixpath.join(d, "export")).model
        _, y_k, p_k, _, _ = collect(model, manifest, data, split)
        if y is not None and not np.array_equal(y, y_k):
            raise SystemExit(f"{d}: its {split} windows differ from the first member's; use runs on one dataset")
        y = y_k
        preds.append(p_k.reshape(y_k.shape))
    return y, preds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the dataset the members were trained on")
    p.add_argument("--members", required=True, help="comma-separated job dirs (each with export/)")
    args = p.parse_args(argv)
    dirs = [d for d in args.members.split(",") if d]
    y, preds = member_forecasts(args.data, dirs)
    single = [float(np.mean((q - y) ** 2)) for q in preds]
    mean = float(np.mean((np.mean(preds, axis=0) - y) ** 2))
    for d, m in zip(dirs, single, strict=True):
        print(f"{d}: validation MSE {m:.6g}")
    print(f"mean of the members' MSE {np.mean(single):.6g}; the ensemble's {mean:.6g} "
          f"({mean / np.mean(single):.3f}x; {len(y):,} validation windows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
