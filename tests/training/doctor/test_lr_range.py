"""Reading an LR range test, on curves with a known valley, none, and a divergence (numpy only)."""

import math

import numpy as np
import pandas as pd
import pytest

from training.doctor.lr_range import Sweep, diverged, ema, judge, read_sweep

LRS = 1e-6 * (1e6) ** (np.arange(100) / 99)  # 1e-6 .. 1


def valley(seed, bottom=0.05, noise=0.02):
    """Loss 1 at low LR, falling to 0.3 at `bottom`, rising steeply after it; multiplicative noise."""
    d = np.log10(LRS / bottom)
    clean = np.where(d < 0, 0.3 + 0.7 / (1 + np.exp(3 * (d + 2))), 0.3 * np.exp(3 * d))
    return clean * np.exp(np.random.default_rng(seed).normal(scale=noise, size=len(LRS)))


def test_ema_equals_pandas():
    v = np.random.default_rng(0).normal(size=50) + 3
    np.testing.assert_allclose(ema(v, 0.7), pd.Series(v).ewm(alpha=0.3, adjust=False).mean().to_numpy())
    assert math.isinf(ema(np.array([1.0, np.nan, 2.0]))[1])


@pytest.mark.parametrize("seed", range(5))
def test_the_valley_and_the_verdicts_are_stable_across_noise(seed):
    s = read_sweep(LRS, valley(seed))
    assert s.has_valley and 0.02 < s.lr_min < 0.12  # the EMA lags a step or two, never a decade
    assert s.lr_diverged is not None and s.lr_diverged > s.lr_min
    assert judge(s, 1e-3)[0] == "ok"
    assert judge(s, 0.9)[0] == "too_high"
    assert judge(s, 1e-7)[0] == "too_low"
    assert judge(s, 1e-4)[0] == "ok"  # slow, but the sweep had moved there: not a FAIL


def test_a_flat_sweep_is_inconclusive_even_when_the_configured_lr_is_extreme():
    flat = 1.0 + 0.01 * np.random.default_rng(1).normal(size=len(LRS))
    s = read_sweep(LRS, flat, level=0.99)
    assert not s.has_valley
    assert judge(s, 1e-3)[0] == judge(s, 1e-7)[0] == "inconclusive"
    assert "no valley" in judge(s, 1e-3)[1]


def test_below_the_mean_level_is_a_valley_for_a_hard_target():
    hard = np.linspace(1.1, 0.93, len(LRS))  # from the random start down to 7% under the mean level
    assert read_sweep(LRS, hard, level=1.0).has_valley
    assert not read_sweep(LRS, hard, level=0.94).has_valley


def test_divergence_ends_the_sweep_and_bounds_the_lr():
    losses = valley(0)[:80].copy()
    losses[-1] = np.nan
    assert diverged(ema(losses)) and not diverged(ema(losses[:60]))
    s = read_sweep(LRS, losses)
    assert s.lr_diverged is not None and s.lr_diverged <= LRS[79]
    assert judge(s, s.lr_diverged)[0] == "too_high"


def test_loss_at_reads_the_curve_below_and_inside_the_sweep():
    s = Sweep(LRS, np.linspace(2, 1, len(LRS)), 2.0, 1.0, 1.0, None)
    assert s.loss_at(1e-9) == 2.0 and s.loss_at(1.0) == 1.0 and 1.4 < s.loss_at(1e-3) < 1.6
