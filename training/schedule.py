"""Learning rate: scaled to the global batch, linear warmup, then constant, cosine or plateau.

A learning rate tuned for one batch size does not fit another: with data parallelism the
global batch grows with the replica count, so the LR is rescaled by
f(global_batch / reference_batch), linear for SGD (Goyal et al., 2017) and square root for
the Adam family (whose update is normalized per parameter), with a warmup because the
scaled LR is too large for the first steps of a fresh model.
"""

from __future__ import annotations

import math

import tensorflow as tf

RULES = ("sqrt", "linear", "none")
DECAYS = ("constant", "cosine", "plateau")


def default_rule(optimizer: str) -> str:
    return "linear" if optimizer == "sgd" else "sqrt"


def scale_lr(base_lr: float, global_batch: int, reference_batch: int, rule: str) -> float:
    """base_lr x f(global_batch / reference_batch) for rule in {sqrt, linear, none}."""
    if base_lr <= 0 or global_batch < 1 or reference_batch < 1:
        raise ValueError("base_lr, global_batch and reference_batch must be positive")
    ratio = global_batch / reference_batch
    if rule == "linear":
        return base_lr * ratio
    if rule == "sqrt":
        return base_lr * math.sqrt(ratio)
    if rule == "none":
        return base_lr
    raise ValueError(f"unknown LR scaling rule {rule!r}; use one of {RULES}")


def lr_at(step: int, *, peak: float, warmup_steps: int, total_steps: int, decay: str, min_lr: float = 0.0) -> float:
    """The schedule in plain Python (the reference the TF schedule is tested against)."""
    if warmup_steps and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if decay == "cosine":
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_lr + (peak - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    return peak


class WarmupSchedule(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak`, then constant or cosine decay, times a plateau factor.

    The plateau factor is a variable a callback lowers when validation loss stalls
    (ReduceLROnPlateau cannot change an LR that is a schedule).
    """

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, decay: str = "constant",
                 min_lr: float = 0.0, factor: tf.Variable | None = None) -> None:
        super().__init__()
        if decay not in DECAYS:
            raise ValueError(f"unknown decay {decay!r}; use one of {DECAYS}")
        self.peak, self.warmup_steps, self.total_steps = float(peak), int(warmup_steps), int(total_steps)
        self.decay, self.min_lr = decay, float(min_lr)
        self.factor = factor

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = tf.constant(self.peak, tf.float32)
        warm = float(max(self.warmup_steps, 1))
        warmup = peak * (step + 1.0) / warm
        if self.decay == "cosine":
            span = float(max(1, self.total_steps - self.warmup_steps))
            progress = tf.minimum(1.0, tf.maximum(0.0, (step - self.warmup_steps) / span))
            after = self.min_lr + (peak - self.min_lr) * 0.5 * (1.0 + tf.cos(math.pi * progress))
        else:
            after = peak
        lr = tf.where(step < float(self.warmup_steps), warmup, after) if self.warmup_steps else after
        if self.factor is not None:
            lr = lr * tf.cast(self.factor, tf.float32)
        return lr

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "decay": self.decay, "min_lr": self.min_lr}


def describe(peak: float, base_lr: float, global_batch: int, reference_batch: int, rule: str,
             warmup_steps: int, steps_per_epoch: int, epochs: int, decay: str, min_lr: float) -> str:
    """The effective schedule as one log line, logged at start."""
    total = steps_per_epoch * epochs
    points = sorted({0, max(0, warmup_steps - 1), warmup_steps, total // 2, max(0, total - 1)})
    vals = ", ".join(f"step {s}: {lr_at(s, peak=peak, warmup_steps=warmup_steps, total_steps=total, decay=decay, min_lr=min_lr):.3g}"
                     for s in points)
    return (f"LR: base {base_lr:g} x {rule}(global batch {global_batch} / reference {reference_batch}) = peak {peak:.4g}; "
            f"warmup {warmup_steps} steps, then {decay}; {vals}")
