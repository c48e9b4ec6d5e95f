"""The learnability baselines against numpy references, on windows built with known answers."""

import numpy as np
import pytest

from training.doctor.learnability import (
    LEAK_R2,
    NOTHING_R2,
    best_single_column,
    compare_baselines,
    persistence_columns,
    target_matrix,
)

FEATURES = ["a", "b", "c", "y"]


def windows(n=3000, L=12, seed=0):
    """Windows of an AR(1) process `y` with three other columns; t in order."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n + L + 1, 4))
    for i in range(1, len(rows)):
        rows[i, 3] = 0.8 * rows[i - 1, 3] + 0.6 * rows[i, 3]
    x = np.stack([rows[i : i + L] for i in range(n)]).astype(np.float32)
    nxt = rows[L : n + L, 3]  # the row after each window: the target at horizon 1
    return x, nxt, np.arange(n)


def test_persistence_and_mean_equal_numpy_on_the_latest_quarter():
    x, y, t = windows()
    b = compare_baselines(x, y[:, None, None], t, features=FEATURES, targets=["y"])
    hold = slice(int(len(x) * 0.75), None)
    mean = y[: int(len(x) * 0.75)].mean()
    assert b.mse["mean"] == pytest.approx(np.mean((y[hold] - mean) ** 2), rel=1e-9)
    assert b.mse["persistence"] == pytest.approx(np.mean((y[hold] - x[hold][:, -1, 3]) ** 2), rel=1e-6)
    # an AR(1) with coefficient 0.8: the best linear forecast is 0.8 * last value, R2 about 0.64
    assert 0.5 < b.r2("linear") < 0.75 and b.r2("linear") > b.r2("persistence")
    col = b.best_column
    assert (col.name, col.lag, col.is_persistence) == ("y", 0, True) and col.r2 < LEAK_R2


def test_ridge_matches_least_squares_when_the_signal_is_strong():
    x, _, t = windows(seed=1)
    w = np.random.default_rng(2).normal(size=x.shape[1] * x.shape[2])
    y = x.reshape(len(x), -1) @ w + 0.1 * np.random.default_rng(3).normal(size=len(x))
    b = compare_baselines(x, y[:, None, None], t, features=FEATURES, targets=["y"])
    fit, hold = slice(0, 2250), slice(2250, None)
    a = np.c_[x.reshape(len(x), -1), x.mean(axis=1), np.ones(len(x))]
    coef = np.linalg.lstsq(a[fit], y[fit], rcond=None)[0]
    reference = np.mean((a[hold] @ coef - y[hold]) ** 2)
    assert b.mse["linear"] == pytest.approx(reference, rel=0.05)
    assert b.r2("linear") > 0.99


def test_unrelated_targets_have_nothing_to_learn():
    x, _, t = windows(seed=4)
    for seed in range(5):
        noise = np.random.default_rng(10 + seed).normal(size=len(x))
        b = compare_baselines(x, noise[:, None, None], t, features=FEATURES, targets=["y"], seed=seed)
        assert b.r2(b.best) < NOTHING_R2, b.mse


def test_a_nonlinear_target_is_not_called_unlearnable():
    x, _, t = windows(seed=5)
    y = np.abs(x[:, -2, 0]) + 0.1 * np.random.default_rng(6).normal(size=len(x))
    b = compare_baselines(x, y[:, None, None], t, features=FEATURES, targets=["y"])
    assert b.r2("linear") < 0.05 < 0.3 < b.r2("features")


@pytest.mark.parametrize("lag", [0, 3])
def test_a_leaked_column_is_named_with_its_lag(lag):
    x, y, t = windows(seed=7)
    x = x.copy()
    x[:, x.shape[1] - 1 - lag, 1] = 3 * y + 2  # column b holds the target, lag rows before the last
    col = compare_baselines(x, y[:, None, None], t, features=FEATURES, targets=["y"]).best_column
    assert (col.name, col.lag, col.is_persistence) == ("b", lag, False) and col.r2 > 0.999999


def test_series_levels_do_not_make_a_column_look_like_a_leak():
    """A per-series constant explains most of a global variance, but nothing within a series."""
    x, y, t = windows(seed=8)
    sid = np.arange(len(x)) % 3
    x, y = x.copy(), y + 50.0 * sid
    x[:, :, 0] = 50.0 * sid[:, None]
    assert np.corrcoef(x[:, -1, 0], y)[0, 1] ** 2 > 0.99  # globally it would look like a leak
    col = best_single_column(x, target_matrix(y[:, None, None], "regression", None), features=FEATURES,
                             sid=sid, persistence=[3])
    assert col.name != "a" and col.r2 < LEAK_R2


def test_targets_as_a_matrix():
    assert target_matrix(np.array([[[0]], [[2]]]), "multiclass", 3).tolist() == [[1, 0, 0], [0, 0, 1]]
    assert target_matrix(np.zeros((4, 3, 2)), "regression", None).shape == (4, 6)
    assert persistence_columns(FEATURES, ["y", "a"], 4) == [3, 0, 3, 0]
    assert persistence_columns(FEATURES, ["z"], 1) is None


def test_classification_targets_are_scored_as_brier_against_the_class_frequencies():
    x, _, t = windows(seed=9)
    labels = (x[:, -1, 0] > 0).astype(np.float32)
    b = compare_baselines(x, labels[:, None], t, features=FEATURES, targets=["y"], task="binary")
    assert "persistence" not in b.mse and b.r2("linear") > 0.3
    hold = labels[2250:]
    assert b.mse["mean"] == pytest.approx(np.mean((hold - labels[:2250].mean()) ** 2), rel=1e-9)
    coin = np.random.default_rng(1).integers(0, 3, len(x))
    b = compare_baselines(x, coin[:, None], t, features=FEATURES, targets=["y"], task="multiclass", num_classes=3)
    assert b.r2(b.best) < NOTHING_R2
