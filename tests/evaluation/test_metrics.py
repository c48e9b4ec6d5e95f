"""Per-step metrics, the seasonal naive forecast and MASE against direct numpy computations."""

import numpy as np
import pytest

from contract.window import WindowSpec
from evaluation import metrics as fm

HOUR = 3_600_000_000_000


def test_season_from_the_time_step_or_given():
    assert fm.season_length("timestamp", HOUR) == 24
    assert fm.season_length("timestamp", HOUR // 2) == 48
    assert fm.season_length("timestamp", 24 * HOUR) == 7
    assert fm.season_length("timestamp", 7 * 24 * HOUR) == 52
    assert fm.season_length("timestamp", 7 * HOUR) is None
    assert fm.season_length("integer", 1) is None and fm.season_length("integer", 1, given=12) == 12


def test_seasonal_positions_read_the_value_whole_seasons_before_each_target():
    """A series y[i] = i: the seasonal naive value of y[T+d] is y[T+d-m*ceil(d/m)]."""
    L, m, H, T = 30, 7, 10, 100
    window = np.arange(T - L + 1, T + 1, dtype=float)  # inputs y[T-L+1..T]
    d = WindowSpec(look_back=L, horizon=H, target_sequence=True).target_distances
    assert d.tolist() == list(range(1, 11)) and WindowSpec(look_back=L, horizon=3).target_distances.tolist() == [3]
    pos = fm.seasonal_positions(L, d, m)
    expected = [T + k - m * int(np.ceil(k / m)) for k in range(1, H + 1)]
    assert window[pos].tolist() == expected
    assert fm.seasonal_positions(5, d, m) is None  # a 5-row window cannot reach a week back


def test_the_same_hour_one_day_before_the_target():
    """Moved from the WindowSpec method it replaces, with a target sequence now covered too."""
    spec = WindowSpec(look_back=48, horizon=1)
    # the same hour one day (24 rows) before the target is input 48 - 1 + 1 - 24 = 24
    assert fm.seasonal_positions(spec.look_back, spec.target_distances, 24) == [24]
    assert fm.seasonal_positions(spec.look_back, spec.target_distances, 49) is None  # before the window
    seq = WindowSpec(look_back=48, horizon=3, target_sequence=True)
    assert fm.seasonal_positions(seq.look_back, seq.target_distances, 24) == [24, 25, 26]


def test_per_step_metrics_equal_numpy():
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=(50, 4, 2)), rng.normal(size=(50, 4, 2))
    steps = fm.per_step(y, p, np.arange(1, 5), scale=2.0)
    for i, s in enumerate(steps):
        err = p[:, i, :] - y[:, i, :]
        assert s["step"] == i + 1
        assert s["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)))
        assert s["mae"] == pytest.approx(np.mean(np.abs(err)))
        assert s["mase"] == pytest.approx(np.mean(np.abs(err)) / 2.0)
    overall = fm.metrics(y, p)
    assert overall["rmse"] == pytest.approx(np.sqrt(np.mean((p - y) ** 2)))


def test_mase_scale_is_the_in_sample_seasonal_naive_mae():
    """From overlapping windows of one series, the scale equals |y[t] - y[t-m]| averaged over the
    row pairs the windows hold (each interior pair counted equally often)."""
    rng = np.random.default_rng(1)
    series = np.cumsum(rng.normal(size=400))
    L, m = 48, 24
    windows = np.stack([series[i : i + L] for i in range(len(series) - L + 1)])
    weights = np.zeros(len(series) - m)
    for i in range(len(windows)):
        weights[i : i + L - m] += 1
    reference = np.sum(weights * np.abs(series[m:] - series[:-m])) / weights.sum()
    assert fm.mase_scale(windows, m) == pytest.approx(reference)
    assert fm.mase_scale(windows[:, :20], m) is None  # the window is shorter than a season
