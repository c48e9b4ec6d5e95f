"""The TensorFlow warmup schedule against the plain-Python plan (lr_plan.lr_at)."""

import pytest

import training  # noqa: F401  (Keras 2)
from training.config import TrainConfig
from training.lr_plan import lr_at, plan_lr
from training.schedule import WarmupSchedule


@pytest.mark.parametrize("decay", ["constant", "cosine"])
def test_warmup_schedule_matches_reference(decay):
    sched = WarmupSchedule(peak=0.01, warmup_steps=10, total_steps=100, decay=decay, min_lr=1e-4)
    for step in [0, 1, 5, 9, 10, 11, 50, 99, 150]:
        ref = lr_at(step, peak=0.01, warmup_steps=10, total_steps=100, decay=decay, min_lr=1e-4)
        assert float(sched(step)) == pytest.approx(ref, rel=1e-5)
    assert float(sched(0)) == pytest.approx(0.001)  # warmup starts at peak / warmup_steps
    assert float(sched(9)) == pytest.approx(0.01)


def test_plateau_factor_scales_the_schedule():
    import tensorflow as tf

    factor = tf.Variable(1.0)
    sched = WarmupSchedule(peak=0.01, warmup_steps=0, total_steps=10, factor=factor)
    assert float(sched(5)) == pytest.approx(0.01)
    factor.assign(0.5)
    assert float(sched(5)) == pytest.approx(0.005)


def test_schedule_from_plan_follows_the_plan():
    plan = plan_lr(TrainConfig(decay="cosine", warmup_epochs=0.5, epochs=4), replicas=2, train_windows=6400)
    sched = WarmupSchedule.from_plan(plan)
    for step in (0, plan.warmup_steps - 1, plan.warmup_steps, plan.total_steps // 2, plan.total_steps - 1):
        assert float(sched(step)) == pytest.approx(plan.lr_at(step), rel=1e-5, abs=1e-9)  # float32 near 0
