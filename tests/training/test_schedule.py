"""LR scaling math and the warmup schedule against a plain-Python reference."""

import math

import numpy as np
import pytest

import training  # noqa: F401  (Keras 2)
from training.schedule import WarmupSchedule, default_rule, lr_at, scale_lr


@pytest.mark.parametrize("rule,expected", [("linear", 4e-3), ("sqrt", 2e-3), ("none", 1e-3)])
def test_scale_lr_rules(rule, expected):
    assert scale_lr(1e-3, 256, 64, rule) == pytest.approx(expected)


def test_scale_lr_is_identity_at_the_reference_batch_and_refuses_nonsense():
    for rule in ("linear", "sqrt", "none"):
        assert scale_lr(3e-4, 128, 128, rule) == pytest.approx(3e-4)
    with pytest.raises(ValueError):
        scale_lr(1e-3, 0, 64, "sqrt")
    with pytest.raises(ValueError, match="unknown LR scaling rule"):
        scale_lr(1e-3, 64, 64, "cubic")


def test_default_rules():
    assert default_rule("sgd") == "linear"
    assert default_rule("adam") == default_rule("adamw") == "sqrt"


@pytest.mark.parametrize("decay", ["constant", "cosine"])
def test_warmup_schedule_matches_reference(decay):
    sched = WarmupSchedule(peak=0.01, warmup_steps=10, total_steps=100, decay=decay, min_lr=1e-4)
    for step in [0, 1, 5, 9, 10, 11, 50, 99, 150]:
        ref = lr_at(step, peak=0.01, warmup_steps=10, total_steps=100, decay=decay, min_lr=1e-4)
        assert float(sched(step)) == pytest.approx(ref, rel=1e-5)
    assert float(sched(0)) == pytest.approx(0.001)  # warmup starts at peak / warmup_steps
    assert float(sched(9)) == pytest.approx(0.01)


def test_cosine_reaches_min_lr_and_warmup_is_linear():
    vals = [lr_at(s, peak=1.0, warmup_steps=4, total_steps=20, decay="cosine", min_lr=0.1) for s in range(25)]
    np.testing.assert_allclose(vals[:4], [0.25, 0.5, 0.75, 1.0])
    assert vals[19] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert vals[24] == pytest.approx(0.1)


def test_plateau_factor_scales_the_schedule():
    import tensorflow as tf

    factor = tf.Variable(1.0)
    sched = WarmupSchedule(peak=0.01, warmup_steps=0, total_steps=10, factor=factor)
    assert float(sched(5)) == pytest.approx(0.01)
    factor.assign(0.5)
    assert float(sched(5)) == pytest.approx(0.005)
