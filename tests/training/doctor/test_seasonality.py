"""The dominant season and the look-back that reaches it, against numpy and known series."""

import numpy as np
import pytest

from training.doctor.seasonality import autocorrelation, dominant_season, look_back_for


def test_autocorrelation_equals_numpy_corrcoef_style_estimate():
    s = np.cumsum(np.random.default_rng(0).normal(size=500))
    acf = autocorrelation([s], 30)
    d = s - s.mean()
    reference = [np.sum(d[k:] * d[: len(d) - k]) / np.sum(d * d) for k in range(31)]
    np.testing.assert_allclose(acf, reference, atol=1e-12)


@pytest.mark.parametrize("period", [7, 24, 52])
def test_a_seasonal_series_names_its_period(period):
    rng = np.random.default_rng(period)
    k = np.arange(period * 40)
    series = [np.sin(2 * np.pi * k / period) + 0.3 * rng.normal(size=len(k)) + 5 * i for i in range(3)]
    lag, r = dominant_season(autocorrelation(series, 3 * period))
    assert lag == period and r > 0.5


def test_noise_has_no_season_and_the_look_back_reaches_one_season():
    assert dominant_season(autocorrelation([np.random.default_rng(1).normal(size=2000)], 100)) is None
    assert look_back_for(24) == 25 and look_back_for(7) == 8


def test_the_day_wins_over_its_half_day_sub_harmonic_and_a_slightly_stronger_week():
    acf = np.zeros(200)
    acf[0] = 1.0
    for lag, r in ((12, 0.26), (24, 0.43), (72, 0.41), (168, 0.45)):
        acf[lag] = r
    assert dominant_season(acf) == (24, 0.43)
