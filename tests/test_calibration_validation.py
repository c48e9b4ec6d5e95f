"""benchmarks.calibration_validation: calibrate on the earlier validation windows, measure on the later."""

import numpy as np

from benchmarks.calibration_validation import compare


def test_per_step_and_pooled_shifts_fitted_on_earlier_windows_measured_on_later_ones():
    """Errors 1x, 2x and 4x wider at steps 1-3 and levels that ignore it: fitted on the first half of
    the window times, both rules cover ~80% of the second half's targets overall, but the per-step
    interval's width follows each step's errors while the pooled one is one width for every step."""
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.normal(size=(n, 3, 1)) * np.array([1.0, 2.0, 4.0])[:, None]
    q = np.broadcast_to(np.array([-0.1, 0.1]), (n, 3, 1, 2))
    t = rng.permutation(n)  # window times, not in storage order
    r = compare(y, q, t, (0.1, 0.9), 0.5)
    assert r["windows"] == [2000, 2000]
    assert abs(r["per_step"]["coverage"] - 0.8) < 0.02 and abs(r["pooled"]["coverage"] - 0.8) < 0.02
    assert r["none"]["coverage"] < 0.1 and abs(r["none"]["width"] - 0.2) < 1e-9
    # the per-step interval's width follows the steps: 2 x 1.28 x (1 + 2 + 4) / 3 on average
    assert abs(r["per_step"]["width"] - 2 * 1.2816 * 7 / 3) < 0.3
    # the pooled shift is one width for all three steps: that of the pooled errors' 80% range
    pooled = np.quantile(np.abs(y[t <= np.quantile(t, 0.5)]), 0.8) * 2
    assert abs(r["pooled"]["width"] - pooled) < 0.3
