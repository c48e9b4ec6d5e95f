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
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the dataset the members were trained on")
    p.add_argument("--members", required=True, help="comma-separated job dirs (each with export/)")
    args = p.parse_args(argv)
    dirs = [d for d in args.members.split(",") if d]
    from training.data import load_manifest
    from training.ensemble import load_members, member_quantiles, validation_mse

    manifest = load_manifest(args.data)
    single, mean = validation_mse(load_members(dirs, manifest), manifest, args.data, levels=member_quantiles(dirs))
    for d, m in zip(dirs, single, strict=True):
        print(f"{d}: validation MSE {m:.6g}")
    print(f"mean of the members' MSE {np.mean(single):.6g}; the ensemble's {mean:.6g} "
          f"({mean / np.mean(single):.3f}x; {manifest.windows('val'):,} validation windows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
