"""Quantile scores against numpy written out by hand; conformal calibration exact on its windows."""

import pickle

import numpy as np
import pytest

from evaluation.quantiles import (
    QuantileSums,
    calibrate,
    central_intervals,
    conformal_min_targets,
    conformal_ranks,
    conformal_shifts,
    pinball,
)

LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)


def forecasts(seed=0, w=2000, steps=2, targets=2):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(w, steps, targets))
    from statistics import NormalDist

    z = np.array([NormalDist().inv_cdf(t) for t in LEVELS])
    q = np.zeros((w, steps, targets, len(LEVELS))) + z * np.array([1.0, 1.5])[None, :steps, None, None]
    return y, q


def test_pinball_is_the_textbook_formula():
    y, q = 1.0, np.array([0.0, 1.0, 3.0])
    # under-forecast by 1 at tau=0.1: 0.1; exact: 0; over-forecast by 2 at tau=0.9: (0.9 - 1) * -2 = 0.2
    np.testing.assert_allclose(pinball(y, q, (0.1, 0.5, 0.9)), [0.1, 0.0, 0.2])


def test_intervals_are_the_symmetric_pairs():
    assert central_intervals(LEVELS) == [(0, 4), (1, 3)]
    assert central_intervals((0.05, 0.5, 0.9)) == []


@pytest.mark.parametrize("cuts", [[], [5, 999]])
def test_scores_equal_numpy_over_the_whole_arrays_in_any_batching(cuts):
    y, q = forecasts()
    acc = QuantileSums(2, LEVELS)
    for a, b in zip([0, *cuts], [*cuts, len(y)], strict=True):
        acc.merge(pickle.loads(pickle.dumps(QuantileSums(2, LEVELS).add(y[a:b], q[a:b]))))
    r = acc.result(distances=[1, 2], scale=2.0)
    u = y[..., None] - q
    want = np.maximum(np.array(LEVELS) * u, (np.array(LEVELS) - 1) * u).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(r["pinball"], want, rtol=1e-12)
    np.testing.assert_allclose(r["observed"], (y[..., None] <= q).mean(axis=(0, 1, 2)), rtol=1e-12)
    assert r["crps"] == pytest.approx(2 * want.mean()) and r["scaled_mean_pinball"] == pytest.approx(want.mean() / 2)
    outer = r["intervals"][0]
    assert (outer["lower"], outer["upper"], outer["nominal"]) == (0.1, 0.9, 0.8)
    inside = (y >= q[..., 0]) & (y <= q[..., 4])
    assert outer["coverage"] == pytest.approx(inside.mean()) and outer["mean_width"] == pytest.approx(
        (q[..., 4] - q[..., 0]).mean())
    below, above = np.maximum(q[..., 0] - y, 0), np.maximum(y - q[..., 4], 0)  # alpha = 0.2
    assert outer["interval_score"] == pytest.approx((q[..., 4] - q[..., 0] + 10 * (below + above)).mean(), rel=1e-12)
    inner = r["intervals"][1]  # 0.25-0.75: alpha 0.5
    assert inner["interval_score"] == pytest.approx(
        (q[..., 3] - q[..., 1] + 4 * (np.maximum(q[..., 1] - y, 0) + np.maximum(y - q[..., 3], 0))).mean(), rel=1e-12)
    # step 1's quantiles are those of N(0, 1): 80% coverage; step 2's are 1.5x too wide: more
    steps = r["per_step"]
    assert abs(steps[0]["intervals"][0]["coverage"] - 0.8) < 0.03 and steps[1]["intervals"][0]["coverage"] > 0.9


def test_levels_must_be_sorted_and_shapes_must_fit():
    with pytest.raises(ValueError, match="sorted"):
        QuantileSums(1, (0.9, 0.1))
    with pytest.raises(ValueError, match="do not fit"):
        QuantileSums(1, LEVELS).add(np.zeros((3, 1, 1)), np.zeros((3, 1, 1, 2)))


@pytest.mark.parametrize("n", [1, 7, 100, 1001])
def test_conformal_shifts_hold_each_level_on_the_calibration_windows_with_the_finite_sample_rank(n):
    rng = np.random.default_rng(n)
    y = rng.normal(size=(n, 1, 1)) * 3 + 1  # the forecast below is far too narrow and off-centre
    q = np.broadcast_to(np.linspace(-0.5, 0.5, len(LEVELS)), (n, 1, 1, len(LEVELS)))
    fixed = calibrate(q, conformal_shifts(y, q, LEVELS))
    for j, tau in enumerate(LEVELS):
        # upper levels: at least tau of the targets at or below; lower: below it at most tau of them
        rank = np.ceil((n + 1) * tau) if tau > 0.5 else np.floor((n + 1) * tau) if tau < 0.5 else np.ceil(n * tau)
        assert (y <= fixed[..., j]).mean() == pytest.approx(min(max(rank, 1), n) / n)
        if tau > 0.5 and (n + 1) * tau <= n:
            assert (y <= fixed[..., j]).mean() >= tau
        if tau < 0.5 and (n + 1) * tau >= 1:
            assert (y < fixed[..., j]).mean() <= tau
    assert (np.diff(fixed, axis=-1) >= 0).all()  # calibrated quantiles never cross


def test_conformal_shifts_are_per_step_and_target():
    """Each target row and target gets the shift of its own residuals: numpy's sorted residuals there,
    at the finite-sample rank (n = 49: the 5th smallest for 0.1, the 45th for 0.9)."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=(49, 3, 2)) * np.array([1.0, 2.0, 4.0])[:, None]  # wider errors further ahead
    q = rng.normal(size=(49, 3, 2, 2)) * 0.1
    shifts = conformal_shifts(y, q, (0.1, 0.9))
    assert shifts.shape == (3, 2, 2)
    for h in range(3):
        for k in range(2):
            r = np.sort(y[:, h, k, None] - q[:, h, k], axis=0)
            np.testing.assert_array_equal(shifts[h, k], [r[4, 0], r[44, 1]])
    with pytest.raises(ValueError, match="do not fit"):
        conformal_shifts(y, q[..., :1], (0.1, 0.9))


@pytest.mark.parametrize("n", [19, 20, 57])
def test_conformal_intervals_cover_a_new_target_at_least_nominally(n):
    """The split-conformal guarantee, by simulation: calibrate on n exchangeable targets, then the
    10-90% interval covers a new target from the same distribution with probability between 0.8 and
    0.8 + 2/(n+1) (exactly (ceil(0.9(n+1)) - floor(0.1(n+1))) / (n+1)). The plain empirical quantile
    (ceil(n·tau)-th residual) falls short: 0.762 at n = 20."""
    rng = np.random.default_rng(n)
    trials = 100_000
    levels = (0.1, 0.9)
    q = np.array([-0.5, 0.5])  # a forecast far too narrow, off-centre
    y = rng.standard_t(4, size=(trials, n)) * 3 + 1
    new = rng.standard_t(4, size=trials) * 3 + 1
    covered = np.empty(trials, bool)
    for chunk in np.array_split(np.arange(trials), 20):
        shifts = np.stack([conformal_shifts(y[i, :, None, None], np.broadcast_to(q, (n, 1, 1, 2)), levels)
                           for i in chunk])
        lo, hi = (q + shifts).T
        covered[chunk] = (new[chunk] >= lo) & (new[chunk] <= hi)
    exact = (np.ceil(0.9 * (n + 1)) - np.floor(0.1 * (n + 1))) / (n + 1)
    assert 0.8 <= exact <= 0.8 + 2 / (n + 1)
    assert abs(covered.mean() - exact) < 0.006  # 4 standard errors of 100,000 trials


def test_too_few_calibration_targets_for_a_level_are_named():
    assert conformal_ranks(100, LEVELS)[1] == []
    rank, short = conformal_ranks(5, (0.1, 0.5, 0.9))
    assert short == [0.1, 0.9] and list(rank) == [1, 3, 5]  # (5+1)·0.1 < 1 and (5+1)·0.9 > 5: clipped
    assert conformal_ranks(9, (0.1, 0.9))[1] == []  # 10·0.1 = 1, 10·0.9 = 9: exactly enough
    for tau in (0.05, 0.1, 0.25, 0.75, 0.9, 0.95):  # the count the trainer names is the first that suffices
        need = conformal_min_targets(tau)
        assert conformal_ranks(need, (tau,))[1] == [] and conformal_ranks(need - 1, (tau,))[1] == [tau]


def test_a_naive_baseline_without_an_interval_is_said():
    """Look-back 24 of hourly rows: the seasonal naive point forecast is scored (lag 24 reaches the
    window's first row) but its lag never fits inside a 24-row training window for its errors."""
    from evaluation.report import baseline_residuals, interval_notes

    history = np.random.default_rng(0).normal(size=(50, 24))
    residuals = baseline_residuals(history, [1], 24, LEVELS)
    assert set(residuals) == {"persistence"}
    notes = dict(interval_notes(LEVELS, residuals, positions=(0,), look_back=24))
    assert set(notes) == {"seasonal_persistence_interval"} and "window of 24 rows" in notes["seasonal_persistence_interval"]
    assert interval_notes((), residuals, (0,), 24) == () and interval_notes(LEVELS, residuals, None, 24) == ()
