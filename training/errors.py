"""The trainer's error types, importable without TensorFlow (so `--help` and config errors stay fast).

Each maps to an exit code in training/__main__.py: bad data or heads exit 2 (never
retried), a stopped run 3, a job-dir I/O failure 1 (retried).
"""


class DatasetError(ValueError):
    """The dataset directory does not match its manifest."""


class HeadError(ValueError):
    """The output activation or loss does not fit the target."""


class TrainingStopped(RuntimeError):
    """Training was stopped because it cannot succeed as configured (flat or NaN loss)."""


class JobDirError(RuntimeError):
    """A file in the job dir cannot be read or written (named in the message)."""
