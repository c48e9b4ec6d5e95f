"""The export takes raw rows (and, with --calendar, their timestamps) and answers in original units."""

import numpy as np
import pandas as pd
import pytest

from preprocessing.cli import run as preprocess
from tests.training.conftest import config, sines
from training.data import load_manifest, read_windows


@pytest.fixture(scope="module")
def calendar_dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("cal")
    df = sines(n=600)
    df["t"] = pd.Timestamp("2023-03-20 00:30") + pd.to_timedelta(df["t"] * 37, unit="min")
    df.to_parquet(d / "raw.parquet", index=False)
    preprocess(["--input", str(d / "raw.parquet"), "--output", str(d / "data"), "--time-column", "t",
                "--series-column", "sid", "--features", "x1,x2,y", "--targets", "y", "--look-back", "8",
                "--train-shards", "2", "--eval-shards", "1", "--calendar", "hour,dayofweek,month"])
    return d / "data"


def test_calendar_export_builds_the_calendar_from_raw_times(calendar_dataset, tmp_path):
    """x holds only the file's columns; the graph adds the calendar from `time` as the job did."""
    import tensorflow as tf

    from training.export import export, load_predictor
    from training.model import build_model

    m = load_manifest(str(calendar_dataset))
    assert m.file_features == ("x1", "x2", "y") and len(m.features) == 9
    model = build_model(m, config(calendar_dataset).model)
    export(model, m, str(tmp_path / "export"))
    w = next(read_windows(m, str(calendar_dataset), "val", shuffle=False, with_ids=True).batch(64).as_numpy_iterator())
    fc = np.array([m.column(c).center for c in m.features], np.float32)
    fs = np.array([m.column(c).scale for c in m.features], np.float32)
    raw = (w["x"] * fs + fc)[:, :, :3]
    times = m.window.input_times(w["t"], m.step)
    y = m.column("y")
    manual = model(tf.constant(w["x"]), training=False).numpy() * y.scale + y.center
    predict = load_predictor(str(tmp_path / "export"))
    np.testing.assert_allclose(predict(raw, times), manual, rtol=1e-4, atol=1e-4)
    # the wrong times give other calendar values, hence other predictions: the times are used
    assert not np.allclose(predict(raw, times + 6 * 3_600_000_000_000), manual, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def per_series_dataset(tmp_path_factory):
    from tests.training.conftest import build_dataset

    return build_dataset(tmp_path_factory.mktemp("per_series"), extra=("--scale-by", "series"))


@pytest.mark.parametrize("anchor", ["auto", "scaled"])
def test_per_series_export_and_evaluation_invert_with_each_series_statistics(per_series_dataset, tmp_path, anchor):
    """Served with its series key, each window is scaled and unscaled with that series' own numbers
    (numpy per series on the raw training rows); eval.json's original units likewise. Also with
    --anchor scaled (what auto trains on per-series data), whose layers read the window's spread."""
    import dataclasses

    import tensorflow as tf

    from training.evaluate import collect, regression_report
    from training.export import export, load_predictor, load_series_scaling
    from training.model import build_model

    data = per_series_dataset
    m = load_manifest(str(data))
    series = load_series_scaling(m, str(data))
    raw = pd.read_parquet(data.parent / "raw.parquet")
    train = raw[raw["t"] < m.split_boundaries.val_start]
    stats = train.groupby("sid")[["x1", "x2", "y"]].agg(["mean", lambda v: v.std(ddof=0)])
    model = build_model(m, dataclasses.replace(config(data).model, anchor=anchor))
    assert (anchor == "scaled") == any(layer.name == "relative_to_last" for layer in model.layers)
    export(model, m, str(tmp_path / "export"), series=series)
    w = next(read_windows(m, str(data), "test", shuffle=False, with_ids=True).batch(256).as_numpy_iterator())
    keys = np.array([series.names[i] for i in series.rows_of_ids(w["sid"])])
    mean = np.stack([[stats.loc[k, (c, "mean")] for c in ("x1", "x2", "y")] for k in keys])[:, None, :]
    std = np.stack([[stats.loc[k, (c, "<lambda_0>")] for c in ("x1", "x2", "y")] for k in keys])[:, None, :]
    raw_x = w["x"] * std + mean
    manual = model(tf.constant(w["x"]), training=False).numpy() * std[:, 0, 2:] + mean[:, 0, 2:]
    assert len(set(keys)) >= 2
    np.testing.assert_allclose(load_predictor(str(tmp_path / "export"))(raw_x, series=keys), manual, rtol=1e-4,
                               atol=1e-3)
    x, y, p, sid, _ = collect(model, m, str(data))
    report = regression_report(m, x, y, p, sid=sid, series=series)
    rows = series.rows_of_ids(sid)
    yo = y.reshape(len(y), -1)[:, 0] * series.scale[rows, 2] + series.center[rows, 2]
    po = p.reshape(len(p), -1)[:, 0] * series.scale[rows, 2] + series.center[rows, 2]
    np.testing.assert_allclose(report["model"]["original"]["rmse"], np.sqrt(np.mean((yo - po) ** 2)), rtol=1e-5)
    last = x[:, -1, 2] * series.scale[rows, 2] + series.center[rows, 2]
    np.testing.assert_allclose(report["baselines"]["persistence"]["original"]["rmse"],
                               np.sqrt(np.mean((yo - last) ** 2)), rtol=1e-5)


def test_doctor_warns_when_training_does_not_cover_a_calendar_cycle(calendar_dataset):
    """About 10 days of training rows: the week is covered, the month of the year is not."""
    from training.data import sample_windows
    from training.doctor import checks_data

    m = load_manifest(str(calendar_dataset))
    v = checks_data.check_scaling(m, sample_windows(m, str(calendar_dataset), n=256, with_ids=True))
    assert v.status == "WARN" and "covers only 3% of a month cycle" in v.evidence, v.evidence
    assert "dayofweek" not in v.evidence.split("|")[0] and "--calendar" in v.fix
