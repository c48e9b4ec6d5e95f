"""The TensorFlow LR schedule that follows an LRPlan: linear warmup, then constant or cosine.

The plan itself (global batch, scaling rule, peak LR, warmup steps) is computed without
TensorFlow in lr_plan.py; this is the graph-side half, tested against `lr_plan.lr_at`.
"""

from __future__ import annotations

import math

from contract.logs import import_tensorflow
from training.config import DECAYS
from training.lr_plan import LRPlan

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)


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

    @classmethod
    def from_plan(cls, plan: LRPlan, factor: tf.Variable | None = None) -> WarmupSchedule:
        return cls(plan.peak_lr, plan.warmup_steps, plan.total_steps, plan.decay, plan.min_lr, factor)
