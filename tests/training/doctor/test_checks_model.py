"""Model checks of the doctor: each passes on a healthy setup and fails on a broken one."""

import dataclasses

import numpy as np
import pytest

from tests.training.conftest import config
from training.config import TrainConfig
from training.doctor import checks_model
from training.lr_plan import plan_lr


def test_capacity(healthy):
    data, m, s = healthy
    assert checks_model.check_capacity(m, config(data), s).status == "PASS"
    v = checks_model.check_capacity(m, config(data, "--units", "1"), s, steps=60)
    assert v.status == "FAIL" and "cannot even memorize one batch" in v.fix


def test_head(healthy):
    data, m, s = healthy
    v = checks_model.check_head(m, config(data), s)
    assert v.status == "PASS" and v.evidence.endswith("forecasting the change from its last value (--anchor last)")
    v = checks_model.check_head(m, config(data, "--anchor", "scaled"), s)
    assert v.evidence.endswith("in the window's own scale (--anchor scaled)")
    v = checks_model.check_head(m, config(data, "--head-activation", "sigmoid"), s)
    assert v.status == "FAIL" and "sigmoid output on a regression target is refused" in v.evidence


def test_learning_rate(healthy, tmp_path):
    data, m, s = healthy
    cfg = config(data, "--per-replica-batch-size", "64")  # the reference batch: peak LR = base LR
    plan = plan_lr(cfg.train, 1, m.windows("train"))
    assert plan.peak_lr == TrainConfig.base_lr and plan.global_batch == 64
    ok = checks_model.check_lr(m, cfg, s, plan, plot_path=str(tmp_path / "lr.png"))
    assert ok.status == "PASS", ok.evidence
    assert "suggested" not in ok.evidence and ok.evidence.endswith("; keep it"), ok.evidence  # a pass suggests nothing
    assert (tmp_path / "lr.png").stat().st_size > 1000
    bad = checks_model.check_lr(m, cfg, s, dataclasses.replace(plan, base_lr=5.0, peak_lr=5.0))
    assert bad.status == "FAIL" and "far too high" in bad.evidence and "lower --base-lr" in bad.fix
    # the old sweep (argmin of each step's own batch) called a sensible SGD LR "far too high"
    sgd = config(data, "--optimizer", "sgd", "--base-lr", "0.05")
    v = checks_model.check_lr(m, sgd, s, plan_lr(sgd.train, 1, m.windows("train")))
    assert v.status == "PASS" and "sgd LR sweep 1e-05..10" in v.evidence, v.evidence


def test_batch_size(healthy):
    data, m, s = healthy
    assert checks_model.check_batch(m, config(data), s, 64).status in ("PASS", "WARN")
    v = checks_model.check_batch(m, config(data), s, m.windows("train") // 4)
    assert v.status == "FAIL" and "4 steps per epoch" in v.evidence


def test_noise_scale_is_never_printed_negative(healthy, monkeypatch):
    """Two noisy gradient-norm means can give tr(Sigma) < 0: it was printed as "~-2"."""
    assert np.isnan(checks_model.noise_scale(g_small=1.0, g_big=1.2, small=16, big=256))  # tr(Sigma) < 0
    assert checks_model.noise_scale(g_small=2.0, g_big=1.0, small=16, big=256) == pytest.approx(
        ((2.0 - 1.0) / (1 / 16 - 1 / 256)) / ((256 * 1.0 - 16 * 2.0) / 240))
    data, m, s = healthy
    monkeypatch.setattr(checks_model, "gradient_noise_scale", lambda *a, **k: float("nan"))
    v = checks_model.check_batch(m, config(data), s, 64)
    assert "~-" not in v.evidence and "not measurable" in v.evidence and v.status == "PASS", v


def test_gradient_noise_scale_grows_with_label_noise(healthy):
    data, m, s = healthy
    cfg = config(data)
    clean = checks_model.gradient_noise_scale(m, cfg, s)
    noisy = dict(s, y=s["y"] + np.random.default_rng(0).normal(scale=5.0, size=s["y"].shape).astype(np.float32))
    assert checks_model.gradient_noise_scale(m, cfg, noisy) > 2 * clean
