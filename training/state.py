"""Training state that must survive a restart: early stopping, the plateau LR factor, snapshots.

Keras' BackupAndRestore restores weights, optimizer and epoch after a restart, but
EarlyStopping keeps its best value, wait count and best weights only in memory: after a
restart it starts over and `restore_best_weights` restores the wrong epoch. The same holds
for a plateau LR factor. `StateStore` persists such state per epoch beside the backup, and
the callbacks below reload the state of the epoch BackupAndRestore resumed after.
All workers compute the same state (validation loss is all-reduced under
MultiWorkerMirroredStrategy); only the chief writes it, and no worker reads it mid-run
(see jobdir.py for the rule and the torn read it prevents).
"""

from __future__ import annotations

import io
import json
import logging
import posixpath

import numpy as np

from contract.logs import import_tensorflow
from training.jobdir import read_bytes, read_json, write_atomic

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)

log = logging.getLogger(__name__)


def write_npz(path: str, arrays: list[np.ndarray]) -> None:
    """Arrays to an .npz at a local or gs:// path (no pickle), written whole (jobdir.write_atomic)."""
    buf = io.BytesIO()
    np.savez(buf, *arrays)
    write_atomic(path, buf.getvalue())


def read_npz(path: str) -> list[np.ndarray]:
    with np.load(io.BytesIO(read_bytes(path))) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


class StateStore:
    """Per-epoch JSON state plus optional weight snapshots in a directory (local or gs://).

    Every worker keeps the states in memory (they are the same everywhere: computed from
    all-reduced metrics); only the writer (the chief) writes the file, whole, each epoch.
    The file is read once, when a restarted run resumes (`load`), never mid-run.
    """

    KEEP = 5  # the last few epochs cover any resume point

    def __init__(self, directory: str, name: str, *, writer: bool) -> None:
        self.directory, self.name, self.writer = directory, name, writer
        self.path = posixpath.join(directory, f"{name}.json")
        self._states: dict[str, dict] | None = None

    def states(self) -> dict[str, dict]:
        """The states this worker knows (restored ones and those of this run), in memory."""
        return dict(self._states or {})

    def load(self, epoch: int) -> dict | None:
        """State saved at the end of `epoch`, read from the file (at resume only)."""
        self._states = read_json(self.path, missing={})
        return self._states.get(str(epoch))

    def save(self, epoch: int, state: dict) -> None:
        data = self.states()
        data[str(epoch)] = state
        self._states = {k: data[k] for k in sorted(data, key=int)[-self.KEEP:]}
        if self.writer:
            write_atomic(self.path, json.dumps(self._states))

    def weights_path(self, epoch: int) -> str:
        return posixpath.join(self.directory, f"{self.name}-weights-epoch{epoch}.npz")

    def save_weights(self, epoch: int, weights: list[np.ndarray]) -> None:
        if self.writer:
            write_npz(self.weights_path(epoch), weights)

    def load_weights(self, epoch: int) -> list[np.ndarray]:
        return read_npz(self.weights_path(epoch))

    def prune_weights(self, keep_epochs: set[int]) -> None:
        if not self.writer:
            return
        for path in tf.io.gfile.glob(posixpath.join(self.directory, f"{self.name}-weights-epoch*.npz")):
            epoch = int(path.rsplit("epoch", 1)[1].split(".")[0])
            if epoch not in keep_epochs:
                tf.io.gfile.remove(path)


class PersistentEarlyStopping(tf.keras.callbacks.EarlyStopping):
    """EarlyStopping whose best value, wait count and best weights survive a restart."""

    def __init__(self, store: StateStore, **kwargs) -> None:
        super().__init__(**kwargs)
        self.store = store
        self._restored = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._restored = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._restored:
            return
        self._restored = True
        if epoch == 0:
            return
        state = self.store.load(epoch - 1)
        if state is None:
            log.warning("no early-stopping state for epoch %d in %s; starting it over", epoch - 1, self.store.directory)
            return
        self.best, self.wait, self.best_epoch = state["best"], state["wait"], state["best_epoch"]
        if self.restore_best_weights and state.get("has_weights"):
            self.best_weights = self.store.load_weights(self.best_epoch)
        log.info("restored early stopping at epoch %d: best %.6g at epoch %d, wait %d",
                 epoch, self.best, self.best_epoch + 1, self.wait)

    def on_epoch_end(self, epoch, logs=None):
        before = self.best_epoch if self.best_weights is not None else None
        super().on_epoch_end(epoch, logs)
        has_weights = self.best_weights is not None
        if has_weights and self.best_epoch != before:
            self.store.save_weights(self.best_epoch, self.best_weights)
        self.store.save(epoch, {"best": float(self.best), "wait": int(self.wait), "best_epoch": int(self.best_epoch),
                                "has_weights": has_weights})
        # keep the snapshots any stored (resumable) epoch still refers to
        self.store.prune_weights({s["best_epoch"] for s in self.store.states().values()})


class PlateauFactor(tf.keras.callbacks.Callback):
    """Multiply the LR schedule's factor variable by `factor` after `patience` epochs without
    improvement of `monitor` (val_loss) (ReduceLROnPlateau for a scheduled LR), persisted like early stopping."""

    def __init__(self, variable: tf.Variable, store: StateStore, *, patience: int, factor: float,
                 min_delta: float = 0.0, monitor: str = "val_loss") -> None:
        super().__init__()
        self.variable, self.store, self.monitor = variable, store, monitor
        self.patience, self.factor, self.min_delta = patience, factor, min_delta
        self.best, self.wait = np.inf, 0
        self._restored = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._restored:
            return
        self._restored = True
        state = self.store.load(epoch - 1) if epoch else None
        if state:
            self.best, self.wait = state["best"], state["wait"]
            self.variable.assign(state["factor"])

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        if current < self.best - self.min_delta:
            self.best, self.wait = float(current), 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.variable.assign(self.variable * self.factor)
                self.wait = 0
                log.info("epoch %d: %s plateaued, LR factor now %.4g", epoch + 1, self.monitor,
                         float(self.variable.numpy()))
        self.store.save(epoch, {"best": float(self.best), "wait": self.wait, "factor": float(self.variable.numpy())})
