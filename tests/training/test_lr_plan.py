"""The batch/LR plan without TensorFlow: scaling rules, warmup, steps, and what the plan derives."""

import math
import subprocess
import sys

import numpy as np
import pytest

from training.config import ConfigError, TrainConfig
from training.lr_plan import (
    batch_sizes,
    default_per_replica_batch,
    default_rule,
    full_batches,
    lowered_default_note,
    lr_at,
    plan_lr,
    scale_lr,
)


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


def test_cosine_reaches_min_lr_and_warmup_is_linear():
    vals = [lr_at(s, peak=1.0, warmup_steps=4, total_steps=20, decay="cosine", min_lr=0.1) for s in range(25)]
    np.testing.assert_allclose(vals[:4], [0.25, 0.5, 0.75, 1.0])
    assert vals[19] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert vals[24] == pytest.approx(0.1)




def test_batch_sizes_from_either_setting():
    assert batch_sizes(TrainConfig(), 4) == (64, 256)
    assert batch_sizes(TrainConfig(per_replica_batch=32), 2) == (32, 64)
    assert batch_sizes(TrainConfig(global_batch=96), 3) == (32, 96)
    with pytest.raises(ConfigError, match="does not divide"):
        batch_sizes(TrainConfig(global_batch=96), 5)


@pytest.mark.parametrize(("windows", "replicas", "per"), [
    (24_164, 1, 64),  # household power: 377 steps at 64
    (3_200, 1, 64),  # exactly 50 steps at 64
    (3_199, 1, 32),  # 49 steps at 64, 99 at 32
    (1_000, 1, 16),  # Seattle weather's size: 15 steps at 64, 31 at 32, 62 at 16
    (100, 1, 16),  # never below 16: 6 steps (the doctor FAILs below 10)
    (10_000, 4, 32),  # 39 global steps at 4 x 64, 78 at 4 x 32
    (0, 1, 16),
])
def test_the_default_batch_gives_an_epoch_at_least_50_steps_down_to_16_per_replica(windows, replicas, per):
    assert default_per_replica_batch(windows, replicas) == per
    plan = plan_lr(TrainConfig(), replicas, windows)
    assert (plan.per_replica_batch, plan.global_batch) == (per, per * replicas)
    if windows:
        assert plan.steps_per_epoch == windows // (per * replicas)
    # the LR follows the batch actually used, as for a batch the user set
    assert plan.peak_lr == pytest.approx(TrainConfig.base_lr * math.sqrt(per * replicas / 64))


def test_the_lowered_default_is_noted_only_when_the_rule_acted():
    t = TrainConfig()
    note = lowered_default_note(t, plan_lr(t, 1, 1_000), 1_000)
    assert note.startswith("default batch lowered from 64 to 16 per replica: the 1000 train windows would give 15 steps")
    assert lowered_default_note(t, plan_lr(t, 1, 24_164), 24_164) is None  # 64 kept
    user = TrainConfig(per_replica_batch=16)  # the same batch, chosen by the user
    assert lowered_default_note(user, plan_lr(user, 1, 1_000), 1_000) is None


def test_a_batch_the_user_set_is_kept_on_a_small_split():
    assert batch_sizes(TrainConfig(per_replica_batch=64), 1, 1_000) == (64, 64)
    assert batch_sizes(TrainConfig(global_batch=128), 2, 1_000) == (64, 128)
    assert default_per_replica_batch(None, 4) == 64


def test_plan_derives_every_quantity_from_config_replicas_and_windows():
    t = TrainConfig(per_replica_batch=32, base_lr=1e-3, reference_batch=64, warmup_epochs=1.5, epochs=10)
    plan = plan_lr(t, replicas=8, train_windows=100_000)
    assert (plan.per_replica_batch, plan.global_batch) == (32, 256)
    assert plan.steps_per_epoch == 100_000 // 256
    assert plan.rule == "sqrt" and plan.peak_lr == pytest.approx(1e-3 * math.sqrt(256 / 64))
    assert plan.warmup_steps == round(1.5 * (100_000 // 256))
    assert plan.total_steps == 10 * plan.steps_per_epoch
    assert plan.decay == "constant" and not plan.plateau


def test_plan_sgd_is_linear_plateau_runs_constant_and_steps_are_capped():
    plan = plan_lr(TrainConfig(optimizer="sgd", decay="plateau", max_steps_per_epoch=7), replicas=2,
                   train_windows=10_000)
    assert plan.rule == "linear" and plan.peak_lr == pytest.approx(TrainConfig.base_lr * 128 / 64)
    assert plan.decay == "constant" and plan.plateau
    assert plan.steps_per_epoch == 7
    explicit = plan_lr(TrainConfig(optimizer="sgd", lr_scaling="none"), replicas=2, train_windows=10_000)
    assert explicit.rule == "none" and explicit.peak_lr == pytest.approx(TrainConfig.base_lr)


def test_plan_schedule_and_description():
    t = TrainConfig(per_replica_batch=64, decay="cosine", min_lr=1e-5, warmup_epochs=1, epochs=3, base_lr=1e-3)
    plan = plan_lr(t, replicas=1, train_windows=640)
    assert plan.steps_per_epoch == 10 and plan.warmup_steps == 10
    vals = np.array([plan.lr_at(s) for s in range(plan.total_steps)])
    np.testing.assert_allclose(vals[:10], np.arange(1, 11) / 10 * 1e-3)
    assert np.all(np.diff(vals[10:]) < 0) and plan.lr_at(plan.total_steps) == pytest.approx(1e-5)
    text = plan.describe()
    assert "64 global" in text and "peak 0.001" in text and "cosine" in text
    assert plan.to_dict()["global_batch"] == 64


def test_full_batches():
    assert full_batches(0, 64) == 0
    assert full_batches(10, 64) == 1
    assert full_batches(640, 64) == 10


def test_the_plan_and_the_config_import_no_tensorflow():
    code = "import sys, training.lr_plan, training.config; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
