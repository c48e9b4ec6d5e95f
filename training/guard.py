"""The flat-loss / NaN guard: stop a run that cannot learn as configured, and say why.

A loss that sits at the predict-the-mean level for epochs, or predictions without
variance, or a NaN, are the symptoms users meet; the guard stops the run (exit 3, never
retried) and points at the doctor.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training.state import write_npz

FLAT_CAUSES = (
    "inputs or targets not scaled (or scaled with statistics from outside the training range)",
    "windows cut wrong: targets that do not follow from their inputs",
    "too little capacity for the data (--units)",
    "an output activation or loss that does not fit the target",
    "a learning rate far too high or too low for the optimizer and global batch (--base-lr, --lr-scaling)",
    "a global batch so large that an epoch has only a few steps",
)


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


def mean_prediction(manifest, y):
    """What predict-the-mean outputs: the sample mean (regression) or the class frequencies."""
    if manifest.task == "regression":
        return np.broadcast_to(y.mean(axis=0), y.shape).astype(np.float32)
    if manifest.task == "binary":
        return np.full(y.shape, float(np.clip(y.mean(), 1e-6, 1 - 1e-6)), np.float32)
    freq = np.bincount(y.reshape(-1).astype(int), minlength=manifest.num_classes) / y.size
    return np.broadcast_to(np.clip(freq, 1e-6, 1), (len(y), manifest.num_classes)).astype(np.float32)
