"""eval.json for a multi-step forecast on real data: per-step metrics, the seasonal naive
baseline and MASE, each recomputed from the raw rows (pandas lookups by timestamp)."""

import numpy as np
import pandas as pd
import pytest

import training  # noqa: F401
from preprocessing.cli import run as preprocess
from tests.training.conftest import POWER_FEATURES, config

H, L = 6, 48


@pytest.fixture(scope="module")
def multistep(power, tmp_path_factory):
    out = tmp_path_factory.mktemp("multistep") / "data"
    preprocess(["--input", str(power["raw"]["good"]), "--output", str(out), "--time-column", "date_time",
                "--features", ",".join(POWER_FEATURES), "--targets", "Global_active_power", "--look-back", str(L),
                "--horizon", str(H), "--target-sequence", "--train-shards", "2", "--eval-shards", "2",
                "--backtest-every", "24"])
    return out


def test_multi_step_report_against_the_raw_rows(power, multistep):
    from training.data import load_manifest
    from training.evaluate import collect, evaluate, target_history
    from training.model import build_model

    m = load_manifest(str(multistep))
    model = build_model(m, config(multistep, "--units", "8").model, seed=0)  # untrained: any predictor will do
    report = evaluate(model, m, str(multistep))
    x, y, p, *_ = collect(model, m, str(multistep))
    assert report["windows"] == len(y) == m.windows("test")  # every test window, none dropped

    raw = pd.read_parquet(power["raw"]["good"]).set_index("date_time")["Global_active_power"]
    col = m.column("Global_active_power")
    t_last = pd.to_datetime(np.concatenate([w["t"] for w in sample_iter(m, multistep)]), unit="ns")
    hours = np.arange(1, H + 1)
    truth = np.stack([raw.reindex(t_last + pd.to_timedelta(h, "h")).to_numpy() for h in hours], axis=1)
    np.testing.assert_allclose(y[:, :, 0] * col.scale + col.center, truth, rtol=1e-5, atol=1e-4)
    pred = p[:, :, 0] * col.scale + col.center
    for step, h in zip(report["model"]["per_step"], hours, strict=True):
        err = pred[:, h - 1] - truth[:, h - 1]
        assert step["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-4)

    # seasonal naive: the same hour one day before each target, looked up in the raw table
    assert report["season"] == 24
    naive = np.stack([raw.reindex(t_last + pd.to_timedelta(h - 24, "h")).to_numpy() for h in hours], axis=1)
    expected = np.sqrt(np.mean((naive - truth) ** 2))
    assert report["baselines"]["seasonal_persistence"]["original"]["rmse"] == pytest.approx(expected, rel=1e-4)
    persistence = np.sqrt(np.mean((raw.reindex(t_last).to_numpy()[:, None] - truth) ** 2))
    assert report["baselines"]["persistence"]["original"]["rmse"] == pytest.approx(persistence, rel=1e-4)

    # MASE: MAE over the in-sample MAE of |y[t] - y[t-24]| within the train windows' inputs
    history = target_history(m, str(multistep))
    scale = np.mean(np.abs(history[:, 24:] - history[:, :-24]))
    assert report["mase_scale"] == {"season": 24, "mae": pytest.approx(scale, rel=1e-9)}
    assert report["model"]["original"]["mase"] == pytest.approx(np.mean(np.abs(pred - truth)) / scale, rel=1e-4)
    assert history.shape == (min(20_000, m.windows("train")), L)


def sample_iter(m, data_dir):
    from training.data import read_windows

    return read_windows(m, str(data_dir), "test", shuffle=False, with_ids=True).batch(1024).as_numpy_iterator()


def test_rolling_origin_backtest_against_the_raw_rows(power, multistep):
    """Daily origins over the test range (the first the last hour before it, its inputs in
    validation): per-origin RMSE of the model and of persistence from raw-row lookups."""
    from training.data import load_manifest
    from training.evaluate import collect, evaluate
    from training.model import build_model

    m = load_manifest(str(multistep))
    model = build_model(m, config(multistep, "--units", "8").model, seed=0)
    report = evaluate(model, m, str(multistep))
    bt = report["backtest"]
    raw = pd.read_parquet(power["raw"]["good"]).set_index("date_time")["Global_active_power"]
    hour = pd.Timedelta(hours=1)
    test_start = pd.Timestamp(m.split_boundaries.test_start, unit="ns")
    origins = pd.to_datetime([o["origin"] for o in bt["per_origin"]])
    assert bt["every"] == 24 and len(origins) > 20 and origins[0] == test_start.ceil("h") - hour
    assert set(np.diff(origins.asi8)) == {24 * 3_600_000_000_000}
    _, _, p, _, t = collect(model, m, str(multistep), "backtest")
    y = m.column("Global_active_power")
    pred = p.reshape(len(p), -1) * y.scale + y.center
    for row, origin in zip(bt["per_origin"], origins, strict=True):
        mine = np.flatnonzero(t == origin.value)
        assert row["windows"] == len(mine) == 1
        truth = raw.loc[[origin + d * hour for d in range(1, H + 1)]].to_numpy()
        np.testing.assert_allclose(row["rmse"], np.sqrt(np.mean((truth - pred[mine[0]]) ** 2)), rtol=1e-4)
        np.testing.assert_allclose(row["persistence_rmse"], np.sqrt(np.mean((truth - raw.loc[origin]) ** 2)),
                                   rtol=1e-5)
    # one window per origin, H steps each: the overall RMSE is the root mean of the per-origin squares
    assert bt["windows"] == len(origins)
    np.testing.assert_allclose(bt["model"]["original"]["rmse"],
                               np.sqrt(np.mean([r["rmse"] ** 2 for r in bt["per_origin"]])), rtol=1e-5)


def test_streamed_report_equals_numpy_over_the_whole_split(power, multistep):
    """Batches of 7 windows, merged: the same report as one pass, and numpy's means over the
    collected split (the report the trainer wrote before it streamed)."""
    from evaluation import metrics as fm
    from training.data import load_manifest
    from training.evaluate import collect, evaluate, original_units, target_history
    from training.model import build_model

    m = load_manifest(str(multistep))
    model = build_model(m, config(multistep, "--units", "8").model, seed=0)
    streamed = evaluate(model, m, str(multistep), batch=7)
    whole = evaluate(model, m, str(multistep), batch=100_000)
    assert m.windows("test") > 7 * 10
    assert json_close(streamed, whole, 1e-9)
    x, y, p, sid, _ = collect(model, m, str(multistep))
    yo, po, xo, last = original_units(m, x, y, p)
    history = target_history(m, str(multistep))
    scale = np.mean(np.abs(history[:, 24:] - history[:, :-24]))
    for got, want in ((streamed["model"]["scaled"], fm.metrics(y, p)),
                      (streamed["model"]["original"], fm.metrics(yo, po, scale)),
                      (streamed["baselines"]["persistence"]["original"], fm.metrics(yo, last, scale)),
                      (streamed["baselines"]["seasonal_persistence"]["original"],
                       fm.metrics(yo, xo[:, [L - 24 + h - 1 for h in range(1, H + 1)], :], scale))):
        assert got == pytest.approx(want, rel=1e-6)


def json_close(a, b, rel):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_close(a[k], b[k], rel) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_close(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == pytest.approx(b, rel=rel)
    return a == b


def test_a_look_back_short_of_the_season_is_said_not_silent(power, tmp_path):
    """Look-back 12 on hourly rows (a daily season): the seasonal naive row cannot be scored and
    MASE falls back to the one-step naive MAE; the report says both (it printed "season 1
    steps" and dropped the row without a word)."""
    from training.data import load_manifest
    from training.evaluate import evaluate, format_table, target_history
    from training.model import build_model

    out = tmp_path / "short"
    preprocess(["--input", str(power["raw"]["good"]), "--output", str(out), "--time-column", "date_time",
                "--features", ",".join(POWER_FEATURES), "--targets", "Global_active_power", "--look-back", "12",
                "--train-shards", "2", "--eval-shards", "2"])
    m = load_manifest(str(out))
    report = evaluate(build_model(m, config(out, "--units", "8").model, seed=0), m, str(out))
    assert "seasonal_persistence" not in report["baselines"] and "persistence" in report["baselines"]
    assert "12 input rows do not reach one season (24 rows)" in report["notes"]["seasonal_persistence"]
    assert "--look-back 24 or more" in report["notes"]["seasonal_persistence"]
    history = target_history(m, str(out))
    assert report["mase_scale"] == {"season": 1, "mae": pytest.approx(np.mean(np.abs(np.diff(history, axis=1))), rel=1e-9)}
    table = format_table(report)
    assert "season 1 steps" not in table and "the one-step naive forecast (train rows)" in table, table
    assert "seasonal naive: not scored" in table, table
