"""Logging set-up both CLIs share: `--log-level`, quiet libraries, full tracebacks only on debug.

At info (the default) a user sees seqscale's progress lines and warnings, Beam's and
TensorFlow's warnings, and on a bad input one line on stderr. TensorFlow's C++ start-up
lines (oneDNN, CUDA probing) are INFO/WARNING of its C++ logger and go at any level but
debug. Beam logs a failing DoFn's traceback at ERROR before the exception reaches the CLI,
which prints the message itself, so that logger is silenced below debug.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

LEVELS = ("debug", "info", "warning", "error")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def level_from_argv(argv: list[str], default: str = "info") -> str:
    """The --log-level value, read before the full parse (logging is set up first)."""
    for i, a in enumerate(argv):
        if a == "--log-level" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--log-level="):
            return a.split("=", 1)[1]
    return default


def configure(level: str) -> None:
    level = level if level in LEVELS else "info"
    logging.basicConfig(level=getattr(logging, level.upper()), format=FORMAT, force=True)
    debug = level == "debug"
    # before TensorFlow is imported: "0" (debug) lets import_tensorflow show its start-up lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if debug else "2")
    quiet = logging.DEBUG if debug else max(logging.WARNING, getattr(logging, level.upper()))
    for name in ("apache_beam", "tensorflow", "absl", "matplotlib", "google", "urllib3"):
        logging.getLogger(name).setLevel(quiet)
    logging.getLogger("apache_beam.runners.common").setLevel(logging.DEBUG if debug else logging.CRITICAL)


def import_tensorflow():
    """TensorFlow, loaded and its devices probed without its C++ start-up lines.

    Those lines (oneDNN, the cudart stub, and on a machine without a GPU an
    `E0000 ... failed call to cuInit` error line) are noise to a user of the doctor, the
    ensemble, or an export; they are shown only when TF_CPP_MIN_LOG_LEVEL is "0" (what
    `configure("debug")` sets; unset, it becomes "2", TensorFlow's warnings and errors only). Every seqscale module that needs TensorFlow loads it through
    here, so whichever loads it first in a process keeps it quiet. Cheap after the first call.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # unset: quiet, its later INFO lines too
    with native_stderr_silenced(os.environ["TF_CPP_MIN_LOG_LEVEL"] != "0"):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Silence C/C++ writes to file descriptor 2 for the block (Python's own sys.stderr is kept).

    TensorFlow 2.21 logs its start-up lines (oneDNN, cudart stub, cuInit) through absl
    before logging is initialised, ignoring TF_CPP_MIN_LOG_LEVEL
    (tensorflow/tensorflow#100442); pointing fd 2 at /dev/null while TensorFlow loads and
    probes devices is the only switch. A Python exception inside still propagates.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
