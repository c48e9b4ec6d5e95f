"""Small per-epoch callbacks: the LR and epoch timing into the logs, and history.json.

Persisted training state (early stopping, plateau) is in state.py, the flat-loss guard
in guard.py, plots in plots.py.
"""

from __future__ import annotations

import json
import time

from contract.logs import import_tensorflow
from training.jobdir import read_json, write_atomic

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)


class LearningRateLogger(tf.keras.callbacks.Callback):
    """Put the LR in effect at the end of each epoch into the logs (history.json, TensorBoard)."""

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = opt.learning_rate
        value = lr(opt.iterations) if callable(lr) else lr
        if logs is not None:
            logs["lr"] = float(tf.keras.backend.get_value(value))


class EpochTimer(tf.keras.callbacks.Callback):
    """Put each epoch's wall time into the logs: epoch_seconds (all) and train_seconds (before validation)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._train_end = None

    def on_test_begin(self, logs=None):
        if getattr(self, "_train_end", 0) is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        if logs is not None:
            logs["epoch_seconds"] = now - self._start
            logs["train_seconds"] = (self._train_end or now) - self._start


class HistoryWriter(tf.keras.callbacks.Callback):
    """history.json: each epoch's logs, kept across restarts (the chief writes; others keep memory).

    Only the writer reads the previous run's history when training (re)starts; the other
    workers hold this run's epochs only and never read the chief's file.
    """

    def __init__(self, path: str, *, writer: bool) -> None:
        super().__init__()
        self.path, self.writer = path, writer
        self.epochs: list[dict] = []

    def on_train_begin(self, logs=None):
        self.epochs = read_history(self.path) if self.writer else []

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        self.epochs.append(entry)
        if self.writer:
            write_atomic(self.path, json.dumps({"epochs": self.epochs}, indent=1))


def read_history(path: str) -> list[dict]:
    return read_json(path, missing={"epochs": []})["epochs"]
