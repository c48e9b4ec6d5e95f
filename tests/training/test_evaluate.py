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
                "--horizon", str(H), "--target-sequence", "--train-shards", "2", "--eval-shards", "2"])
    return out


def test_multi_step_report_against_the_raw_rows(power, multistep):
    from training.data import load_manifest
    from training.evaluate import collect, evaluate, target_history
    from training.model import build_model

    m = load_manifest(str(multistep))
    model = build_model(m, config(multistep, "--units", "8").model, seed=0)  # untrained: any predictor will do
    report = evaluate(model, m, str(multistep))
    x, y, p, _ = collect(model, m, str(multistep))
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
