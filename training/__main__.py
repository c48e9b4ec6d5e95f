"""`python -m training` / `seqscale-train`: logging, then training.train.run().

Importing `training` first sets TF_USE_LEGACY_KERAS=1 before TensorFlow loads (see
training/__init__.py). A failed run exits non-zero: errors are never swallowed. The exit
code is the contract with Kubernetes (k8s/): 0 done; 2 bad configuration or data (never
retried); 3 stopped by the loss guard (never retried); 4 a peer worker was lost (this
worker is fine: the cause is in the peer's log); anything else (1) is retried.
"""

import logging
import sys

import training  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_GUARD, EXIT_PEER_LOST = 0, 1, 2, 3, 4


def main(argv: list[str] | None = None) -> int:
    from contract.logs import configure, level_from_argv

    argv = list(sys.argv[1:] if argv is None else argv)
    level = level_from_argv(argv)
    configure(level)  # quiet TensorFlow's C++ start-up lines unless debug: before TensorFlow loads
    from contract.manifest import ManifestError
    from training.cluster import ClusterError, peer_lost
    from training.config import ConfigError
    from training.errors import DatasetError, HeadError, JobDirError, TrainingStopped
    from training.train import run

    try:
        run(argv)
    except (ConfigError, ClusterError, DatasetError, HeadError, ManifestError) as e:
        print(f"seqscale-train: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except TrainingStopped as e:
        print(f"seqscale-train: training stopped: {e}", file=sys.stderr)
        return EXIT_GUARD
    except JobDirError as e:
        print(f"seqscale-train: error: {worker()}{e}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:
        if not peer_lost(e):
            raise
        logging.getLogger("seqscale.train").debug("peer lost", exc_info=True)
        print(f"seqscale-train: error: {worker()}a peer worker stopped or became unreachable "
              f"({type(e).__name__}); the cause is in that worker's log. The job restarts all workers and "
              "resumes from the last finished epoch", file=sys.stderr)
        return EXIT_PEER_LOST
    return EXIT_OK


def worker() -> str:
    """'worker N: ' for messages, when this process is one of several."""
    import json
    import os

    try:
        return f"worker {json.loads(os.environ['TF_CONFIG'])['task']['index']}: "
    except (KeyError, ValueError, TypeError):
        index = os.environ.get("JOB_COMPLETION_INDEX")
        return f"worker {index}: " if index is not None else ""


if __name__ == "__main__":
    sys.exit(main())
