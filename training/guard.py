"""The loss guard: stop a run that cannot learn as configured, and say which cause it shows.

A loss that sits at the predict-the-mean level, far above it, or jumps around it; a
validation loss that stays at its mean level while training moves; predictions without
variance; a NaN: these are what users meet. The guard stops the run (exit 3, never
retried), names the one cause the numbers point to (loss_patterns.py) and the doctor
command that confirms it. A loss far below the mean level gets a leak warning, judged on the
last steps of the first epoch and on every later epoch (the first epoch's mean holds the
untrained start and the warmup, which hid three leaked runs).
"""

from __future__ import annotations

import logging

import numpy as np

from contract.logs import import_tensorflow
from evaluation.quantiles import mean_head
from training.doctor.loss_patterns import (
    BIG_INPUT,
    Finding,
    diagnose,
    nan_finding,
    suspiciously_low,
)
from training.state import write_npz

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)

log = logging.getLogger(__name__)
CHECK_EVERY = 32  # steps between two reads of the running loss (each read waits for the device)


class FlatLossGuard(tf.keras.callbacks.Callback):
    """Watch the per-epoch losses (train and validation) and the running loss for NaN.

    The batch hook takes Keras' logs as tensors (`_supports_tf_logs`) and reads the running
    loss only every `check_every` steps and at the epoch's last step: reading it every step
    would make the host wait for the device after each batch (no step could run ahead, a
    stall on a GPU). A NaN is then caught within `check_every` steps, or at the latest at
    the end of the epoch.

    The reason for a stop is kept in `self.reason` (and the Finding in `self.finding`) for
    the trainer to report; warnings that do not stop the run are in `self.warnings`. On a
    NaN/inf the weights of the last good epoch are put back and saved by the chief to
    `checkpoint_path`.
    """

    def __init__(self, *, baseline: float, sample_x: np.ndarray, target_mean: float, target_std: float,
                 doctor_cmd: str, checkpoint_path: str, writer: bool, steps_per_epoch: int = 0,
                 val_baseline: float | None = None, features: tuple[str, ...] = (), patience: int = 3,
                 tolerance: float = 0.05, check_every: int = CHECK_EVERY, point: int | None = None,
                 absolute: bool = False, naive: float | None = None,
                 val_naive: float | None = None) -> None:
        super().__init__()
        # the best naive forecast's loss, repeating or extending the target's last input value (None:
        # its past is not in the window): a legitimate forecaster, so a loss is a leak's signature
        # only far below it too (on smooth hourly temperatures persistence alone is at 2% of the mean
        # level, and extending the last change at 0.4%)
        self.naive, self.val_naive = naive, val_naive
        self.absolute = absolute  # an absolute loss (mae, pinball): the leak threshold is its square root
        self.point = point  # a quantile model: its point forecast's level (the spread of the levels is not a signal)
        self._supports_tf_logs = True
        self.check_every = max(1, check_every)
        self.baseline, self.val_baseline, self.sample_x = baseline, val_baseline, sample_x
        self.target_mean, self.target_std, self.steps_per_epoch = target_mean, target_std, steps_per_epoch
        self.doctor_cmd, self.checkpoint_path, self.writer = doctor_cmd, checkpoint_path, writer
        self.patience, self.tolerance = patience, tolerance
        self.losses: list[float] = []
        self.val_losses: list[float] = []
        self.pred_stds: list[float] = []
        self.moved: list[float] = []
        self._pred_start: np.ndarray | None = None
        peak = np.abs(np.nan_to_num(sample_x, posinf=0.0, neginf=0.0)).max(axis=(0, 1)) if sample_x.size else []
        self.big_inputs = tuple(f for f, p in zip(features, peak, strict=False) if p >= BIG_INPUT)
        self.batch_losses: list[float] = []  # this epoch's per-batch losses, from Keras' running mean
        self.reason: str | None = None
        self.finding: Finding | None = None
        self.warnings: list[str] = []
        self._last_good: list[np.ndarray] | None = None
        self._prev_mean, self._prev_steps = 0.0, 0
        self._leak_warned = False  # the leak warning is given once per run

    def explain(self, f: Finding) -> str:
        return (f"{f.seen}.\nLikely cause: {f.meaning}.\nFix: {f.fix}.\n"
                f"Confirm with: {self.doctor_cmd} --only {f.checks}")

    def _stop(self, f: Finding, extra: str = "") -> None:
        self.model.stop_training = True
        self.finding = f
        self.reason = self.explain(f) + extra

    def _predict(self) -> np.ndarray:
        pred = np.asarray(self.model(self.sample_x, training=False), dtype=np.float64)
        return pred if self.point is None else pred[..., self.point]

    def on_train_begin(self, logs=None):
        self._pred_start = self._predict()  # after BackupAndRestore: "moved" counts from this run's start

    def on_epoch_begin(self, epoch, logs=None):
        self.batch_losses, self._prev_mean, self._prev_steps = [], 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        steps = batch + 1
        if self.reason is not None or not logs or "loss" not in logs:
            return
        if steps - self._prev_steps < self.check_every and steps != self.steps_per_epoch:
            return  # no host read of the tensor this step
        mean = float(logs["loss"])
        # Keras logs the running mean of the epoch; the mean loss of the steps since the last
        # read is recovered from two running means
        value = (steps * mean - self._prev_steps * self._prev_mean) / (steps - self._prev_steps) \
            if np.isfinite(mean) else mean
        self._prev_mean, self._prev_steps = mean, steps
        if np.isfinite(value):
            self.batch_losses.append(float(value))
            return
        self._on_nan(steps, mean)

    def _on_nan(self, steps: int, mean: float) -> None:
        finding = nan_finding(self.batch_losses or self.losses, steps, mean,
                              inputs_finite=bool(np.isfinite(self.sample_x).all()))
        kept = ""
        if self._last_good is not None:
            self.model.set_weights(self._last_good)
            if self.writer:
                write_npz(self.checkpoint_path, self._last_good)
            kept = f"\nThe weights of the last good epoch are kept in {self.checkpoint_path}."
        self._stop(finding, kept)

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if k in ("loss", "val_loss")}
        loss = logs.get("loss")
        if self.reason is not None or loss is None:
            return
        if not np.isfinite(loss):  # after the last read of the running loss
            self._on_nan(self.steps_per_epoch or self._prev_steps + 1, loss)
            return
        self._last_good = self.model.get_weights()
        self.losses.append(loss)
        if logs.get("val_loss") is not None:
            self.val_losses.append(float(logs["val_loss"]))
        pred = self._predict()
        self.pred_stds.append(float(pred.std()))
        if self._pred_start is not None:
            self.moved.append(float(np.sqrt(np.mean((pred - self._pred_start) ** 2)) / max(self.target_std, 1e-12)))
        self._leak_check(epoch, loss, self.val_losses[-1] if logs.get("val_loss") is not None else None)
        finding = diagnose(self.losses, self.pred_stds, self.moved, baseline=self.baseline,
                           target_mean=self.target_mean, target_std=self.target_std,
                           steps_per_epoch=self.steps_per_epoch, patience=self.patience, tolerance=self.tolerance,
                           val_losses=self.val_losses, val_baseline=self.val_baseline, big_inputs=self.big_inputs)
        if finding is not None:
            self._stop(finding)


    def _leak_check(self, epoch: int, loss: float, val_loss: float | None) -> None:
        """Warn once when a loss falls below the leak level: the epoch's mean, the mean of its last
        `check_every` steps (in the first epoch the mean is dominated by the untrained start), or
        the validation loss against its own mean level (no dropout, no warmup in it)."""
        if self._leak_warned:
            return
        seen = [(loss, self.baseline, self.naive, f"training loss of epoch {epoch + 1}")]
        if self.batch_losses:
            seen.append((self.batch_losses[-1], self.baseline, self.naive,
                         f"training loss over the last steps of epoch {epoch + 1}"))
        if val_loss is not None and self.val_baseline:
            seen.append((val_loss, self.val_baseline, self.val_naive, f"validation loss after epoch {epoch + 1}"))
        # the lowest against the lower of its levels
        value, baseline, naive, what = min(seen, key=lambda s: s[0] / min(s[1], s[2] or s[1]))
        warning = suspiciously_low(value, baseline, what=what, absolute=self.absolute, naive=naive)
        if warning:
            self.warnings.append(warning)
            self._leak_warned = True
            log.warning(warning)


def persistence_prediction(manifest, x, y_shape, levels=()):
    """What repeating each target's last input value outputs for windows x, shaped like y
    (`y_shape`; a quantile model: at every level and its mean head); None when a target's past
    is not in the window or the task is not regression."""
    pos = manifest.target_positions
    if manifest.task != "regression" or pos is None:
        return None
    return _like_output(np.asarray(x)[:, -1, list(pos)].astype(np.float32), y_shape, levels)


def extrapolation_prediction(manifest, x, y_shape, levels=()):
    """What extending each target's last change outputs: last + d·(last − previous) for a target
    row d rows after the last input, shaped like y; None where persistence has none or the window
    holds one row. On a smooth target (hourly temperatures) it misses by a fifth of persistence's
    squared error: a legitimate forecast, which a leak's loss lies far below too."""
    pos = manifest.target_positions
    if manifest.task != "regression" or pos is None or np.asarray(x).shape[1] < 2:
        return None
    x = np.asarray(x, np.float32)
    last, prev = x[:, -1, list(pos)], x[:, -2, list(pos)]
    d = np.asarray(manifest.window.target_distances, np.float32)
    if len(y_shape) == 3:  # a target sequence: [n, steps, targets]
        return _like_output(last[:, None, :] + d[None, :, None] * (last - prev)[:, None, :], y_shape, levels)
    return _like_output(last + d[0] * (last - prev), y_shape, levels)


def naive_predictions(manifest, x, y_shape, levels=()) -> list[np.ndarray]:
    """The forecasts that read only the targets' own past (persistence, extrapolation): the
    guard's yardstick for a loss too low to be honest."""
    return [p for p in (persistence_prediction(manifest, x, y_shape, levels),
                        extrapolation_prediction(manifest, x, y_shape, levels)) if p is not None]


def _like_output(values, y_shape, levels):
    """[n, targets] (or [n, steps, targets]) values broadcast to a model's output for y_shape."""
    if len(y_shape) == 3 and values.ndim == 2:  # a target sequence: every step
        values = np.broadcast_to(values[:, None, :], tuple(y_shape))
    if len(levels):
        values = np.repeat(values[..., None], len(levels) + mean_head(levels), axis=-1)
    return values


def mean_prediction(manifest, y_train, n: int, levels=()):
    """What predict-the-train-mean outputs for n windows: the mean (regression), the train
    quantiles at `levels` (a quantile model's unconditional forecast), or the class frequencies."""
    y_train = np.asarray(y_train)
    if manifest.task == "regression" and len(levels):
        q = np.moveaxis(np.quantile(y_train, list(levels), axis=0), 0, -1)
        if mean_head(levels):  # the mean head's channel: the train mean
            q = np.concatenate([q, y_train.mean(axis=0)[..., None]], axis=-1)
        return np.broadcast_to(q, (n, *q.shape)).astype(np.float32)
    if manifest.task == "regression":
        return np.broadcast_to(y_train.mean(axis=0), (n, *y_train.shape[1:])).astype(np.float32)
    if manifest.task == "binary":
        return np.full((n, *y_train.shape[1:]), float(np.clip(y_train.mean(), 1e-6, 1 - 1e-6)), np.float32)
    freq = np.bincount(y_train.reshape(-1).astype(int), minlength=manifest.num_classes) / y_train.size
    return np.broadcast_to(np.clip(freq, 1e-6, 1), (n, manifest.num_classes)).astype(np.float32)
