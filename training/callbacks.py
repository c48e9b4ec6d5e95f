"""Callbacks whose state survives a restart, and the chief's reports.

Keras' BackupAndRestore restores weights, optimizer and epoch after a restart, but
EarlyStopping keeps its best value, wait count and best weights only in memory: after a
restart it starts over and `restore_best_weights` restores the wrong epoch. The same holds
for a plateau LR factor. `StateStore` persists such state per epoch beside the backup, and
the callbacks below reload the state of the epoch BackupAndRestore resumed after.
All workers compute the same state (validation loss is all-reduced under
MultiWorkerMirroredStrategy); only the chief writes it, every worker reads it.
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
import time

import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)


def write_npz(path: str, arrays: list[np.ndarray]) -> None:
    """Arrays to an .npz at a local or gs:// path (no pickle), creating its directory."""
    buf = io.BytesIO()
    np.savez(buf, *arrays)
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buf.getvalue())


class StateStore:
    """Per-epoch JSON state plus optional weight snapshots in a directory (local or gs://)."""

    def __init__(self, directory: str, name: str, *, writer: bool) -> None:
        self.directory, self.name, self.writer = directory, name, writer
        self.path = posixpath.join(directory, f"{name}.json")

    def _read(self) -> dict:
        if not tf.io.gfile.exists(self.path):
            return {}
        with tf.io.gfile.GFile(self.path, "r") as f:
            return json.load(f)

    def states(self) -> dict[str, dict]:
        return self._read()

    def load(self, epoch: int) -> dict | None:
        """State saved at the end of `epoch`, or None."""
        return self._read().get(str(epoch))

    def save(self, epoch: int, state: dict) -> None:
        if not self.writer:
            return
        data = self._read()
        data[str(epoch)] = state
        keep = sorted(data, key=int)[-5:]  # the last few epochs cover any resume point
        data = {k: data[k] for k in keep}
        tf.io.gfile.makedirs(self.directory)
        tmp = self.path + ".tmp"
        with tf.io.gfile.GFile(tmp, "w") as f:
            json.dump(data, f)
        tf.io.gfile.rename(tmp, self.path, overwrite=True)

    def weights_path(self, epoch: int) -> str:
        return posixpath.join(self.directory, f"{self.name}-weights-epoch{epoch}.npz")

    def save_weights(self, epoch: int, weights: list[np.ndarray]) -> None:
        if self.writer:
            write_npz(self.weights_path(epoch), weights)

    def load_weights(self, epoch: int) -> list[np.ndarray]:
        with tf.io.gfile.GFile(self.weights_path(epoch), "rb") as f:
            data = np.load(io.BytesIO(f.read()))
            return [data[f"arr_{i}"] for i in range(len(data.files))]

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
    val_loss improvement (ReduceLROnPlateau for a scheduled LR), persisted like early stopping."""

    def __init__(self, variable: tf.Variable, store: StateStore, *, patience: int, factor: float,
                 min_delta: float = 0.0) -> None:
        super().__init__()
        self.variable, self.store = variable, store
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
        current = (logs or {}).get("val_loss")
        if current is None:
            return
        if current < self.best - self.min_delta:
            self.best, self.wait = float(current), 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.variable.assign(self.variable * self.factor)
                self.wait = 0
                log.info("epoch %d: val_loss plateaued, LR factor now %.4g", epoch + 1, float(self.variable.numpy()))
        self.store.save(epoch, {"best": float(self.best), "wait": self.wait, "factor": float(self.variable.numpy())})


FLAT_CAUSES = (
    "inputs or targets not scaled (or scaled with statistics from outside the training range)",
    "windows cut wrong: targets that do not follow from their inputs",
    "too little capacity for the data (--units)",
    "an output activation or loss that does not fit the target",
    "a learning rate far too high or too low for the optimizer and global batch (--base-lr, --lr-scaling)",
    "a global batch so large that an epoch has only a few steps",
)


class TrainingStopped(RuntimeError):
    """Training was stopped because it cannot succeed as configured (flat or NaN loss)."""


class FlatLossGuard(tf.keras.callbacks.Callback):
    """Stop a run that is not learning, and say why it may be.

    Flat: the training loss is no better than (1 - `tolerance`) x the predict-the-mean loss
    and fell less than `tolerance` since the previous epoch, or the predictions on a fixed
    sample have almost no variance, for `patience` epochs in a row. NaN/inf:
    stop at once and put back the weights of the last good epoch (saved by the chief to
    `checkpoint_path`). The reason is kept in `self.reason` for the trainer to report.
    """

    def __init__(self, *, baseline: float, sample_x: np.ndarray, target_std: float, doctor_cmd: str,
                 checkpoint_path: str, writer: bool, patience: int = 3, tolerance: float = 0.05) -> None:
        super().__init__()
        self.baseline, self.sample_x, self.target_std = baseline, sample_x, target_std
        self.doctor_cmd, self.checkpoint_path, self.writer = doctor_cmd, checkpoint_path, writer
        self.patience, self.tolerance = patience, tolerance
        self.flat_epochs = 0
        self.reason: str | None = None
        self._last_good: list[np.ndarray] | None = None
        self._prev_loss: float | None = None

    def _explain(self, what: str) -> str:
        causes = "\n".join(f"  - {c}" for c in FLAT_CAUSES)
        return f"{what}\nLikely causes, most common first:\n{causes}\nDiagnose with: {self.doctor_cmd}"

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss) and self.reason is None:
            self.model.stop_training = True
            kept = ""
            if self._last_good is not None:
                self.model.set_weights(self._last_good)
                if self.writer:
                    write_npz(self.checkpoint_path, self._last_good)
                kept = f"; the weights of the last good epoch are kept in {self.checkpoint_path}"
            self.reason = self._explain(f"the training loss became {loss} at step {batch + 1}{kept}")

    def on_epoch_end(self, epoch, logs=None):
        if self.reason is not None:
            return
        loss = (logs or {}).get("loss")
        if loss is None or not np.isfinite(loss):
            return
        self._last_good = self.model.get_weights()
        pred = np.asarray(self.model(self.sample_x, training=False))
        pred_std = float(pred.std())
        # "flat": no better than predicting the mean, and not getting better either (a loss
        # still falling fast after warmup is slow, not stuck)
        improving = self._prev_loss is not None and loss < self._prev_loss * (1 - self.tolerance)
        self._prev_loss = loss
        flat = loss >= (1 - self.tolerance) * self.baseline and not improving
        dead = pred_std < 1e-3 * max(self.target_std, 1e-12)
        self.flat_epochs = self.flat_epochs + 1 if (flat or dead) else 0
        if self.patience and self.flat_epochs >= self.patience:
            self.model.stop_training = True
            what = (f"the training loss {loss:.4g} did not fall below {1 - self.tolerance:.0%} of the loss of "
                    f"predicting the mean ({self.baseline:.4g})" if flat else
                    f"the predictions have almost no variance (std {pred_std:.3g} vs targets {self.target_std:.3g})")
            self.reason = self._explain(f"{what} for {self.flat_epochs} epochs: the model is not learning")


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
    """Chief only: append each epoch's logs to history.json (kept across restarts)."""

    def __init__(self, path: str, *, writer: bool) -> None:
        super().__init__()
        self.path, self.writer = path, writer
        self.epochs: list[dict] = []

    def on_train_begin(self, logs=None):
        self.epochs = read_history(self.path)

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        self.epochs.append(entry)
        if self.writer:
            tmp = self.path + ".tmp"
            with tf.io.gfile.GFile(tmp, "w") as f:
                json.dump({"epochs": self.epochs}, f, indent=1)
            tf.io.gfile.rename(tmp, self.path, overwrite=True)


def read_history(path: str) -> list[dict]:
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path, "r") as f:
        return json.load(f)["epochs"]


def plot_history(epochs: list[dict], path: str) -> None:
    """loss.png: train and validation loss per epoch, LR on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from training.plots import save_figure

    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = [e["epoch"] for e in epochs]
    ax.plot(x, [e.get("loss") for e in epochs], label="train loss", marker=".")
    if any("val_loss" in e for e in epochs):
        ax.plot(x, [e.get("val_loss") for e in epochs], label="validation loss", marker=".")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("loss (scaled units)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if any("lr" in e for e in epochs):
        ax2 = ax.twinx()
        ax2.plot(x, [e.get("lr") for e in epochs], color="gray", linestyle="--", label="learning rate")
        ax2.set_ylabel("learning rate")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right")
    else:
        ax.legend()
    save_figure(fig, path)
