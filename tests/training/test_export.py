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
