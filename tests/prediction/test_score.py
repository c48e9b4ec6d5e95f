"""seqscale-predict's score mode reproduces the trainer's eval.json on the same windows."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import training  # noqa: F401
from prediction.cli import run as predict
from tests.prediction.test_forecast import make_export


def trainer_side(data, *model_flags):
    """The trainer's report and its test windows' (series id, origin) pairs, from the dataset and
    the same (seeded, untrained) model the export holds."""
    from tests.training.conftest import config
    from training.data import load_manifest
    from training.evaluate import collect, evaluate
    from training.model import build_model

    m = load_manifest(str(data))
    model = build_model(m, config(data, *model_flags).model, seed=0)
    return m, evaluate(model, m, str(data)), collect(model, m, str(data))


def score_rows(out, result) -> pd.DataFrame:
    return pd.concat([pq.read_table(out / f).to_pandas() for f in result["files"]["forecasts"]])


def close(a, b, rel=1e-4):
    return a == pytest.approx(b, rel=rel)


@pytest.mark.parametrize("extra", [(), ("--scale-by", "series"), ("--stride", "3")])
def test_split_test_reproduces_eval_json(extra, tmp_path):
    from contract.records import series_id

    export_dir, raw = make_export(tmp_path / "e", extra)
    m, report, (_, _, _, sid, t) = trainer_side(export_dir.parent / "data")
    result = predict(["--export", str(export_dir), "--input", str(tmp_path / "e" / "raw.parquet"),
                      "--output", str(tmp_path / "out"), "--split", "test", "--batch-size", "100"])
    got = result["report"]
    assert got["windows"] == report["windows"] == m.windows("test") == result["counts"]["windows_scored"]
    for k in ("rmse", "mae", "mase"):
        assert close(got["model"]["original"][k], report["model"]["original"][k]), k
    for k in ("rmse", "mae"):
        assert close(got["model"]["scaled"][k], report["model"]["scaled"][k]), k
    assert got["baselines"].keys() == report["baselines"].keys()
    for name, b in report["baselines"].items():
        assert close(got["baselines"][name]["original"]["rmse"], b["original"]["rmse"]), name
    assert got["mase_scale"] == pytest.approx(report["mase_scale"])
    rows = score_rows(tmp_path / "out", result)
    pairs = sorted(zip((series_id(s) for s in rows["series"]), rows["origin_time"].astype(np.int64), strict=True))
    assert pairs == sorted(zip(sid.tolist(), t.tolist(), strict=True))
    truth = raw.set_index(["sid", "t"])["y"]
    np.testing.assert_allclose(rows["actual"], truth.loc[list(zip(rows["series"], rows["target_time"],
                                                                  strict=True))].to_numpy())
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())["range"]["split"] == "test"


@pytest.fixture(scope="module")
def power_sequence(tmp_path_factory):
    """Real hourly data with gaps, calendar features and a 3-step target sequence."""
    from evaluation import report as er
    from preprocessing.cli import run as preprocess
    from tests.training.conftest import POWER_FEATURES, config, power_hourly
    from training.data import load_manifest
    from training.evaluate import evaluation_plan
    from training.export import export
    from training.model import build_model

    d = tmp_path_factory.mktemp("power_seq")
    raw = d / "raw.parquet"
    power_hourly(150_000).to_parquet(raw, index=False)
    data = d / "data"
    preprocess(["--input", str(raw), "--output", str(data), "--time-column", "date_time", "--features",
                ",".join(POWER_FEATURES), "--targets", "Global_active_power", "--look-back", "24", "--horizon", "3",
                "--target-sequence", "--calendar", "hour,dayofweek", "--train-shards", "2", "--eval-shards", "2",
                "--backtest-every", "24"])
    m = load_manifest(str(data))
    model = build_model(m, config(data, "--units", "8").model, seed=0)
    export(model, m, str(d / "export"), evaluation=er.to_dict(evaluation_plan(m, str(data), None)))
    return d, m


def test_calendar_target_sequence_with_gaps_reproduces_eval_json(power_sequence, tmp_path):
    d, m = power_sequence
    _, report, (_, _, _, _, t) = trainer_side(d / "data", "--units", "8")
    result = predict(["--export", str(d / "export"), "--input", str(d / "raw.parquet"), "--output",
                      str(tmp_path / "out"), "--split", "test"])
    got = result["report"]
    assert got["windows"] == report["windows"] == len(t)
    assert close(got["model"]["original"]["rmse"], report["model"]["original"]["rmse"])
    assert close(got["baselines"]["seasonal_persistence"]["original"]["rmse"],
                 report["baselines"]["seasonal_persistence"]["original"]["rmse"])
    for a, b in zip(got["model"]["per_step"], report["model"]["per_step"], strict=True):
        assert a["step"] == b["step"] and close(a["rmse"], b["rmse"])
    rows = score_rows(tmp_path / "out", result)
    assert sorted(set(rows["origin_time"].astype(np.int64))) == sorted(set(t.tolist()))
    assert sorted(rows["step"].unique()) == [1, 2, 3]
    assert ((rows["target_time"] - rows["origin_time"]) == pd.to_timedelta(rows["step"], "h")).all()


def test_forecast_at_a_cut_equals_the_scored_window_with_that_origin(power_sequence, tmp_path):
    """Forecast mode on the rows up to T gives the same numbers as score mode's window with origin T."""
    d, m = power_sequence
    scored = predict(["--export", str(d / "export"), "--input", str(d / "raw.parquet"), "--output",
                      str(tmp_path / "s"), "--split", "test"])
    rows = score_rows(tmp_path / "s", scored)
    origin = sorted(rows["origin_time"].unique())[len(rows["origin_time"].unique()) // 2]
    raw = pd.read_parquet(d / "raw.parquet")
    raw[raw["date_time"] <= origin].to_csv(tmp_path / "cut.csv", index=False)
    result = predict(["--export", str(d / "export"), "--input", str(tmp_path / "cut.csv"), "--output",
                      str(tmp_path / "f")])
    got = pd.concat([pq.read_table(tmp_path / "f" / f).to_pandas() for f in result["files"]["forecasts"]])
    want = rows[rows["origin_time"] == origin].sort_values("step")
    assert result["counts"]["series_forecast"] == 1 and len(got) == 3
    np.testing.assert_array_equal(got.sort_values("step")["target_time"], want["target_time"])
    np.testing.assert_allclose(got.sort_values("step")["forecast"], want["forecast"], rtol=1e-5)


def test_split_backtest_reproduces_the_per_origin_backtest(power_sequence, tmp_path):
    d, m = power_sequence
    _, report, _ = trainer_side(d / "data", "--units", "8")
    result = predict(["--export", str(d / "export"), "--input", str(d / "raw.parquet"), "--output",
                      str(tmp_path / "out"), "--split", "backtest"])
    got, want = result["report"], report["backtest"]
    assert result["range"]["every"] == want["every"] == 24
    assert got["windows"] == want["windows"] > 10
    assert close(got["model"]["original"]["rmse"], want["model"]["original"]["rmse"])
    assert [r["origin"] for r in got["per_origin"]] == [r["origin"] for r in want["per_origin"]]
    for a, b in zip(got["per_origin"], want["per_origin"], strict=True):
        assert a["windows"] == b["windows"] and close(a["rmse"], b["rmse"])
        assert close(a["persistence_rmse"], b["persistence_rmse"])
