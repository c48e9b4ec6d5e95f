"""--scale-by series: each series scaled with its own training rows' statistics (numpy per series)."""

import json

import numpy as np
import pandas as pd
import pytest

from contract.series_scaling import SERIES_SCALING_NAME, SeriesScaling
from preprocessing.cli import run
from preprocessing.errors import SpecError
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

pytestmark = pytest.mark.slow


def test_each_series_scaled_with_its_own_training_rows(tmp_path):
    df = multi_series()
    late = df[df["series"] == "beta"].head(72).copy()
    late["series"] = "late"  # a series that only starts in the test range: global statistics, counted
    late["ts"] = pd.date_range(end=df["ts"].max(), periods=72, freq="h")
    df = pd.concat([df, late], ignore_index=True)
    pattern = write_files(df, tmp_path / "in", 3, "parquet")
    run(job_args(pattern, tmp_path / "out", "--scale-by", "series", "--chunk-rows", "300"))
    m = load_manifest(tmp_path / "out")
    assert m.scale_by == "series"
    with open(tmp_path / "out" / SERIES_SCALING_NAME) as f:
        table = SeriesScaling.from_json(f.read())
    b = m.split_boundaries
    t_ns = df["ts"].astype("datetime64[ns]").astype(np.int64)
    train = df[t_ns < b.val_start]
    assert table.names == tuple(sorted(train["series"].unique())) and "late" not in table.names
    for name, g in train.groupby("series"):
        i = table.names.index(name)
        np.testing.assert_allclose(table.center[i], g[list(FEATURES)].mean().to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(table.scale[i], g[list(FEATURES)].std(ddof=0).to_numpy(), rtol=1e-9)
        assert table.count[i] == len(g)
    # the global statistics stay in the manifest (the fallback, and what the doctor reads)
    np.testing.assert_allclose([m.column(c).mean for c in FEATURES], train[list(FEATURES)].mean(), rtol=1e-9)
    np.testing.assert_allclose(table.fallback_center, train[list(FEATURES)].mean(), rtol=1e-9)
    late_rows = int(((df["series"] == "late") & (t_ns >= b.val_start)).sum())
    assert late_rows > 0 and m.counts.rows_scaled_with_global_stats == late_rows
    ref, _, _ = reference_windows(df, val_start=b.val_start, test_start=b.test_start, look_back=12, horizon=2,
                                  max_gap=m.max_gap, per_series=True)
    for split in ("train", "val", "test"):
        got = sort_windows(read_split(tmp_path / "out", split))
        np.testing.assert_array_equal(got["t"], ref[split]["t"])
        np.testing.assert_allclose(got["x"], ref[split]["x"], atol=3e-6)
        np.testing.assert_allclose(got["y"], ref[split]["y"], atol=3e-6)
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["scale_by"] == "series"


def test_needs_a_series_column_and_a_mergeable_scaler(tmp_path):
    with pytest.raises(SpecError, match="--scale-by series needs --series-column"):
        run(job_args("x.parquet", tmp_path / "o", "--scale-by", "series", series=False))
    with pytest.raises(SpecError, match="--scale-by series works with --scaler standard or minmax"):
        run(job_args("x.parquet", tmp_path / "o", "--scale-by", "series", "--scaler", "robust"))
