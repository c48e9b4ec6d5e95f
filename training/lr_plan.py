"""The batch and learning-rate plan of a run, as one pure function: `plan_lr`.

A learning rate tuned for one batch size does not fit another: with data parallelism the
global batch grows with the replica count, so the LR is rescaled by
f(global_batch / reference_batch), linear for SGD (Goyal et al., 2017) and square root
for the Adam family (whose update is normalized per parameter), with a linear warmup
because the scaled LR is too large for the first steps of a fresh model. The trainer and
the doctor both call `plan_lr`, the trainer logs it once and saves it in config.json.
No TensorFlow here (the TF schedule that follows this plan is in schedule.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from training.config import (
    DEFAULT_PER_REPLICA_BATCH,
    MIN_DEFAULT_PER_REPLICA_BATCH,
    MIN_STEPS_PER_EPOCH,
    RULES,
    ConfigError,
    TrainConfig,
)


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


def default_per_replica_batch(train_windows: int | None, replicas: int) -> int:
    """64 per replica, halved (down to 16) while an epoch over the train split has fewer than 50 steps.

    A small train split cut into batches of 64 gives an epoch of a dozen steps: too few updates
    between the validation checks that early stopping and the warmup count in epochs. On the
    benchmark's small daily set (about 1,000 train windows, 15 steps at 64) batches of 32 and
    16 lowered the best validation loss on every seed, 8 on one seed of two (BENCHMARKS.md); large
    splits keep 64, whose throughput they need. The same count as the doctor's batch check,
    which FAILs below 10 steps and suggests at most windows / 50 per step.
    """
    per = DEFAULT_PER_REPLICA_BATCH
    if train_windows is None:
        return per
    while per > MIN_DEFAULT_PER_REPLICA_BATCH and train_windows // (per * replicas) < MIN_STEPS_PER_EPOCH:
        per //= 2
    return per


def lowered_default_note(train: TrainConfig, plan: LRPlan, train_windows: int) -> str | None:
    """One line for the log when the plan's batch is the default lowered on a small split, else None."""
    if train.per_replica_batch is not None or train.global_batch is not None:
        return None
    if plan.per_replica_batch == DEFAULT_PER_REPLICA_BATCH:
        return None
    at_default = train_windows // (DEFAULT_PER_REPLICA_BATCH * plan.replicas)
    return (f"default batch lowered from {DEFAULT_PER_REPLICA_BATCH} to {plan.per_replica_batch} per replica: the "
            f"{train_windows} train windows would give {at_default} steps per epoch at {DEFAULT_PER_REPLICA_BATCH} "
            f"(fewer than {MIN_STEPS_PER_EPOCH}); --per-replica-batch-size sets it")


def batch_sizes(train: TrainConfig, replicas: int, train_windows: int | None = None) -> tuple[int, int]:
    """(per-replica batch, global batch) from whichever one the user set (neither: the default
    for a train split of `train_windows`, see default_per_replica_batch)."""
    if train.global_batch is not None:
        if train.global_batch % replicas:
            raise ConfigError(
                f"--global-batch-size {train.global_batch} does not divide by the {replicas} replicas; "
                f"use a multiple of {replicas} or set --per-replica-batch-size"
            )
        return train.global_batch // replicas, train.global_batch
    per = train.per_replica_batch or default_per_replica_batch(train_windows, replicas)
    return per, per * replicas


def full_batches(windows: int, global_batch: int) -> int:
    """Steps per epoch over `windows`: full global batches (at least 1 when there is data)."""
    return max(1, windows // global_batch) if windows else 0


@dataclass(frozen=True)
class LRPlan:
    """Batch sizes, steps and the LR schedule of one run (all derived by `plan_lr`)."""

    replicas: int
    per_replica_batch: int
    global_batch: int
    steps_per_epoch: int
    epochs: int
    optimizer: str
    rule: str  # sqrt | linear | none, after resolving "auto"
    base_lr: float
    reference_batch: int
    peak_lr: float
    warmup_steps: int
    decay: str  # the schedule after warmup: constant | cosine (plateau runs constant x a factor)
    plateau: bool  # a callback lowers the LR when validation loss stalls
    min_lr: float

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def lr_at(self, step: int) -> float:
        """The scheduled LR at a global step (before any plateau factor)."""
        return lr_at(step, peak=self.peak_lr, warmup_steps=self.warmup_steps, total_steps=self.total_steps,
                     decay=self.decay, min_lr=self.min_lr)

    def describe(self) -> str:
        """The plan as one log line, logged at start."""
        total = self.total_steps
        points = sorted({0, max(0, self.warmup_steps - 1), self.warmup_steps, total // 2, max(0, total - 1)})
        vals = ", ".join(f"step {s}: {self.lr_at(s):.3g}" for s in points)
        after = "constant, lowered on plateau" if self.plateau else self.decay
        return (f"batch {self.per_replica_batch} per replica x {self.replicas} replicas in sync = {self.global_batch} "
                f"global; "
                f"{self.steps_per_epoch} steps/epoch. LR: base {self.base_lr:g} x {self.rule}(global batch "
                f"{self.global_batch} / reference {self.reference_batch}) = peak {self.peak_lr:.4g}; warmup "
                f"{self.warmup_steps} steps, then {after}; {vals}")

    def to_dict(self) -> dict:
        return asdict(self)


def plan_lr(train: TrainConfig, replicas: int, train_windows: int) -> LRPlan:
    """The whole plan from the train config, the replica count and the train split's size."""
    per_replica, global_batch = batch_sizes(train, replicas, train_windows)
    steps = full_batches(train_windows, global_batch)
    if train.max_steps_per_epoch:
        steps = min(steps, train.max_steps_per_epoch)
    rule = default_rule(train.optimizer) if train.lr_scaling == "auto" else train.lr_scaling
    return LRPlan(
        replicas=replicas, per_replica_batch=per_replica, global_batch=global_batch, steps_per_epoch=steps,
        epochs=train.epochs, optimizer=train.optimizer, rule=rule, base_lr=train.base_lr,
        reference_batch=train.reference_batch,
        peak_lr=scale_lr(train.base_lr, global_batch, train.reference_batch, rule),
        warmup_steps=round(train.warmup_epochs * steps),
        decay="constant" if train.decay == "plateau" else train.decay, plateau=train.decay == "plateau",
        min_lr=train.min_lr,
    )
