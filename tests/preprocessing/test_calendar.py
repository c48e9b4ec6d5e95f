"""--calendar: sin/cos of the time of day, week and year, against pandas' own calendar fields.

The same definition runs in numpy (the Beam job, the doctor) and in TensorFlow (the export,
from raw timestamps): both are compared with pandas, and the job's windows with an
independent reference built from pandas columns.
"""

import numpy as np
import pandas as pd
import pytest

from contract import calendar
from preprocessing.cli import run
from preprocessing.errors import InputError, SpecError
from tests.helpers import (
    FEATURES,
    job_args,
    load_manifest,
    multi_series,
    read_split,
    reference_windows,
    sort_windows,
    write_files,
)

PARTS = ("hour", "dayofweek", "dayofyear", "month")


def pandas_calendar(times) -> pd.DataFrame:
    """The reference: pandas' calendar fields, turned into sin/cos pairs."""
    ts = pd.DatetimeIndex(pd.to_datetime(times))
    phase = {
        "hour": (ts.hour + ts.minute / 60 + ts.second / 3600 + ts.microsecond / 3.6e9 + ts.nanosecond / 3.6e12) / 24,
        "dayofweek": ts.day_of_week / 7,
        "dayofyear": (ts.day_of_year - 1) / np.where(ts.is_leap_year, 366, 365),
        "month": (ts.month - 1) / 12,
    }
    out = {}
    for p in PARTS:
        out[f"{p}_sin"] = np.sin(2 * np.pi * np.asarray(phase[p], dtype=np.float64))
        out[f"{p}_cos"] = np.cos(2 * np.pi * np.asarray(phase[p], dtype=np.float64))
    return pd.DataFrame(out)


def some_times() -> np.ndarray:
    """Random instants 1875-2096 plus the edges: leap days, century years, midnight, new year."""
    rng = np.random.default_rng(0)
    edges = pd.to_datetime(["2000-02-29 12:00", "2000-03-01", "2100-02-28 23:59:59", "1900-03-01", "2024-12-31 23:30",
                            "2025-01-01", "1969-12-31 23:00", "1970-01-01", "2023-06-15 06:07:08.5"], format="ISO8601")
    return np.concatenate([rng.integers(-3 * 10**18, 4 * 10**18, 100_000), edges.as_unit("ns").asi8])


def test_values_match_pandas_calendar_fields():
    t = some_times()
    got = calendar.matrix(t, PARTS)
    ref = pandas_calendar(t)
    assert list(ref.columns) == list(calendar.column_names(PARTS))
    np.testing.assert_allclose(got, ref.to_numpy(), atol=1e-9)
    # continuous: 23:59 and 00:00 are neighbours, as are 31 December and 1 January
    a, b = calendar.matrix(pd.to_datetime(["2024-12-31 23:59", "2025-01-01 00:00"]).as_unit("ns").asi8, PARTS)
    assert np.abs(a[:2] - b[:2]).max() < 0.01 and np.abs(a[4:6] - b[4:6]).max() < 0.02


def test_tensorflow_serving_computes_the_same_values():
    """The export's graph builds the calendar from raw int64 times exactly as the job did."""
    from training.export import calendar_features

    t = some_times()[:5000].reshape(100, 50)
    got = calendar_features(t, PARTS).numpy()
    np.testing.assert_allclose(got, calendar.matrix(t.ravel(), PARTS).reshape(100, 50, 8).astype(np.float32), atol=1e-6)


@pytest.mark.slow
def test_job_writes_calendar_columns_unscaled_after_the_features(tmp_path):
    df = multi_series()
    df["ts"] = df["ts"] + pd.Timedelta(minutes=17)  # times off the hour: the time of day is fractional
    pattern = write_files(df, tmp_path / "in", 2, "parquet")
    run(job_args(pattern, tmp_path / "out", "--calendar", ",".join(PARTS)))
    m = load_manifest(tmp_path / "out")
    names = calendar.column_names(PARTS)
    assert m.calendar == PARTS and m.features == (*FEATURES, *names) and m.file_features == FEATURES
    assert [m.column(c).scaled for c in names] == [False] * 8 and m.column("x2").scaled
    ref_df = pd.concat([df.reset_index(drop=True), pandas_calendar(df["ts"])], axis=1)
    ref, mean, _ = reference_windows(ref_df, val_start=m.split_boundaries.val_start,
                                     test_start=m.split_boundaries.test_start, look_back=12, horizon=2,
                                     max_gap=m.max_gap, features=(*FEATURES, *names), unscaled=names)
    for split in ("train", "val", "test"):
        got = sort_windows(read_split(tmp_path / "out", split))
        np.testing.assert_array_equal(got["t"], ref[split]["t"])
        np.testing.assert_allclose(got["x"], ref[split]["x"], atol=2e-6)
        np.testing.assert_allclose(got["y"], ref[split]["y"], atol=2e-6)
    # the statistics are still recorded (the doctor reads them), of the train rows
    train = ref_df[ref_df["ts"].astype("datetime64[ns]").astype(np.int64) < m.split_boundaries.val_start]
    np.testing.assert_allclose(m.column("hour_sin").mean, train["hour_sin"].mean(), rtol=1e-9, atol=1e-12)


def test_integer_time_and_name_clashes_are_refused(tmp_path):
    df = pd.DataFrame({"ts": np.arange(100), "x1": np.arange(100.0), "x2": 1.0, "y": np.arange(100.0)})
    df.to_parquet(tmp_path / "int.parquet", index=False)
    with pytest.raises(InputError, match=r"int\.parquet: --calendar needs timestamps.*holds integers"):
        run(job_args(str(tmp_path / "int.parquet"), tmp_path / "out", "--calendar", "hour", series=False))
    with pytest.raises(SpecError, match="--calendar 'week' is unknown; use some of hour, dayofweek"):
        run(job_args("x.parquet", tmp_path / "o2", "--calendar", "week"))
    with pytest.raises(SpecError, match="--calendar computes 'hour_sin', which is also a column"):
        run(["--input", "x.parquet", "--output", str(tmp_path / "o3"), "--time-column", "ts", "--features",
             "x1,hour_sin", "--targets", "y", "--calendar", "hour"])
