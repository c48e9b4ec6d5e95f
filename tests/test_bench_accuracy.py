"""bench_accuracy --quick runs end to end, and scores every model on the same test targets."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from benchmarks.accuracy_data import package_file

pytestmark = pytest.mark.slow


def test_quick_run_scores_the_same_targets_as_an_independent_persistence(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_accuracy", "--quick", "--datasets",
                           "seattle_weather", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (r,) = json.loads(out.read_text())
    assert "seattle_weather" in proc.stdout and "ratio" in proc.stdout
    # independent: the last 20% of the time range, rows with 48 earlier test rows, persistence = yesterday
    df = pd.read_csv(package_file("vega_datasets", "_data", "seattle-weather.csv"))
    t = pd.to_datetime(df["date"], format="%Y/%m/%d")
    test_start = t.min() + 0.8 * (t.max() - t.min())
    in_test = np.flatnonzero(t >= test_start)
    scored = in_test[48:]  # daily rows without gaps: the 49th test row on
    y = df["temp_max"].to_numpy()
    assert r["targets"] == len(scored)
    np.testing.assert_allclose(r["persistence"], np.sqrt(np.mean((y[scored] - y[scored - 1]) ** 2)), rtol=1e-9)
    for name in ("classic", "seqscale", "lightgbm"):
        assert len(r[name]) == 1 and 0 < r[name][0] < 10 * r["persistence"], (name, r[name])
    assert r["seqscale_epochs"] == [[2, 2, 2]]  # the defaults on ~1,000 train windows: three networks (auto)
    # the trees beat persistence on this set; their parameters come from the validation range
    assert r["lightgbm"][0] < r["persistence"] and r["lightgbm_chosen"][0]["trees"] > 0
    assert "LightGBM on lags" in proc.stdout and len(r["ratio_lightgbm_95"]) == 2


def test_lag_features_equal_pandas_shifts_and_skip_rows_across_gaps():
    from benchmarks.accuracy_data import Spec
    from benchmarks.bench_accuracy import lag_rows

    rng = np.random.default_rng(0)
    t = pd.date_range("2024-01-01", periods=80, freq="h").delete(range(40, 43))  # a 3-hour gap
    g = pd.DataFrame({"ts": t, "y": rng.normal(size=len(t)), "x": rng.normal(size=len(t))})
    spec = Spec("s", "", "ts", "y", ("x", "y"), None, ("hour", "dayofweek"), "hourly", season=4)
    rows, feats, y = lag_rows(g, spec, step=3_600_000_000_000, center=1.0, scale=2.0)
    P, L = 8, 4  # two seasons of the target, one of the other feature
    full = g.set_index("ts").asfreq("h")  # the gap as NaN rows: shifts by time, not by row
    want_rows = [i for i, ts in enumerate(g["ts"]) if full["y"].shift(1).loc[:ts].tail(P).notna().all()
                 and len(full.loc[:ts]) > P]
    assert list(rows) == want_rows and 40 not in rows and 48 in rows
    for k, r in enumerate(rows):
        ts = g["ts"][r]
        lags_y = [(full["y"].shift(j).loc[ts] - 1.0) / 2.0 for j in range(1, P + 1)]
        lags_x = [full["x"].shift(j).loc[ts] for j in range(1, L + 1)]
        np.testing.assert_allclose(feats[k], [*lags_y, *lags_x, ts.hour, ts.day_of_week], rtol=1e-12)
        assert y[k] == pytest.approx((g["y"][r] - 1.0) / 2.0)


def test_the_daily_protocol_is_the_published_one(tmp_path):
    """46 weekly origins (the Saturdays 2010-01-02 .. 2010-11-13), scored by seqscale's own
    backtest; its daily persistence equals the published 511.9 and a pandas computation. Run with
    quantiles, it lists the run's test intervals beside the naive ones."""
    from demo.household_power import TARGET, TIME, csv_path

    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_accuracy", "--quick", "--datasets",
                           "household_daily", "--train-flags=--quantiles 0.1,0.9", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (r,) = json.loads(out.read_text())
    run = r["runs"][0]
    assert (run["origins"], run["first_origin"], run["last_origin"]) == (46, "2010-01-02", "2010-11-13")
    days = pd.read_csv(csv_path(), parse_dates=[TIME]).set_index(TIME)[TARGET].resample("1D").sum()
    saturdays = pd.date_range("2010-01-02", "2010-11-13", freq="7D")
    err = [days[s + pd.Timedelta(days=k)] - days[s] for s in saturdays for k in range(1, 8)]
    assert r["persistence"] == pytest.approx(np.sqrt(np.mean(np.square(err))), rel=1e-6)
    assert round(r["persistence"], 1) == 511.9  # the published daily persistence
    assert 0 < r["seqscale"][0] < r["persistence"] * 1.5
    q = run["quantiles"]  # eval.json's test split: every day's window, 7 steps each
    assert set(q) >= {"model", "persistence"} and q["model"]["0.1-0.9"]["width"] > 0
    assert 0 <= q["model"]["0.1-0.9"]["coverage"] <= 1 and len(q["observed"]) == 2
    assert "household_daily seed 0 intervals (test split, eval.json): model 0.1-0.9" in proc.stdout


def test_ratio_interval_pairs_the_same_targets_for_both_models():
    from benchmarks.bench_accuracy import ratio_interval

    rng = np.random.default_rng(1)
    truth = rng.normal(size=500)
    err = rng.normal(size=(3, 500))
    # every seed's errors half the classic's on every target: any resample, paired, gives exactly 0.5
    lo, hi = ratio_interval(truth, truth + 0.5 * err, truth + err)
    assert lo == pytest.approx(0.5, rel=1e-12) and hi == pytest.approx(0.5, rel=1e-12)
    # independent errors of the same size: a ratio near 1 and an interval around it
    lo, hi = ratio_interval(truth, truth + err, truth + rng.normal(size=(3, 500)))
    assert lo < 1 < hi and hi - lo < 0.3


def rmse_at(p, truth, idx):
    return np.sqrt(np.mean([(p[i] - truth[i]) ** 2 for i in idx]))


def test_ratio_interval_matches_a_loop_over_the_same_draws():
    from benchmarks.bench_accuracy import ratio_interval

    rng = np.random.default_rng(2)
    n, draws = 64, 200
    truth = rng.normal(size=n)
    ours, classic = truth + rng.normal(size=(2, n)), truth + 1.3 * rng.normal(size=(2, n))
    block = 4  # round(64 ** (1/3))
    starts = np.random.default_rng(0).integers(0, n - block + 1, size=(draws, n // block))
    ratios = []
    for row in starts:
        idx = [s + j for s in row for j in range(block)]
        ratios.append(np.mean([rmse_at(p, truth, idx) for p in ours]) / np.mean([rmse_at(p, truth, idx) for p in classic]))
    want = np.percentile(ratios, [2.5, 97.5])
    np.testing.assert_allclose(ratio_interval(truth, ours, classic, draws=draws), want, rtol=1e-12)


def test_runs_with_members_are_spaced_and_report_each_members_epochs(tmp_path):
    """With --members N a run trains seeds seed..seed+N-1, so repeated runs start N seeds apart (no
    member shared), and a run's epochs are its members' (members.json) instead of history.json's."""
    from benchmarks.bench_accuracy import epochs_run, members_of

    assert members_of(("--members", "3", "--dropout", "0")) == 3
    assert members_of(("--members=2",)) == 2 and members_of(("--members", "1")) == 1
    assert members_of(("--dropout", "0")) == members_of(("--members", "auto")) == 3  # the most auto trains
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "history.json").write_text(json.dumps({"epochs": [{}, {}, {}]}))
    assert epochs_run(str(tmp_path / "one")) == 3
    (tmp_path / "ens").mkdir()
    (tmp_path / "ens" / "members.json").write_text(json.dumps({"members": [{"epochs_run": 4}, {"epochs_run": 7}]}))
    assert epochs_run(str(tmp_path / "ens")) == [4, 7]
