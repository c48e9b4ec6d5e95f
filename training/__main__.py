"""`python -m training` / `seqscale-train`: logging, then training.train.run().

Importing `training` first sets TF_USE_LEGACY_KERAS=1 before TensorFlow loads (see
training/__init__.py). A failed run exits non-zero: errors are never swallowed.
"""

import logging
import sys

import training  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # TensorFlow logs every collective at INFO; keep its warnings, and our progress lines
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    logging.getLogger("absl").setLevel(logging.WARNING)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    from contract.manifest import ManifestError
    from training.cluster import ClusterError
    from training.config import ConfigError
    from training.data import DatasetError
    from training.guard import TrainingStopped
    from training.model import HeadError
    from training.train import run

    try:
        run(argv)
    except (ConfigError, ClusterError, DatasetError, HeadError, ManifestError) as e:
        print(f"seqscale-train: error: {e}", file=sys.stderr)
        return 2
    except TrainingStopped as e:
        print(f"seqscale-train: training stopped: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
