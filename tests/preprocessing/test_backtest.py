"""--backtest-every: windows at forecast origins every K steps over the test range, inputs reaching
back into earlier splits, against a row-by-row reference on the raw rows."""

import numpy as np
import pandas as pd
import pytest

from contract.records import series_id
from preprocessing.cli import run
from tests.helpers import (
    FEATURES,
    job_args,
    load_manifest,
    multi_series,
    read_split,
    sort_windows,
    write_files,
)

pytestmark = pytest.mark.slow
L, H, K = 12, 2, 5


def reference(df: pd.DataFrame, m) -> dict[str, np.ndarray]:
    """Every (series, last input row) whose L inputs and target are consecutive rows without a gap,
    whose time is an origin (grid index = first origin + k·K) and whose target is a test row."""
    b, step, t0 = m.split_boundaries, m.step, m.time_range[0]
    first_origin = int(np.ceil((b.test_start - t0) / step)) - 1
    center = np.array([m.column(c).center for c in FEATURES])
    scale = np.array([m.column(c).scale for c in FEATURES])
    out = {"t": [], "sid": [], "x": [], "y": []}
    for name, g in df.groupby("series"):
        g = g.sort_values("ts")
        t = g["ts"].astype("datetime64[ns]").astype(np.int64).to_numpy()
        v = (g[list(FEATURES)].to_numpy(np.float64) - center) / scale
        for e in range(L - 1, len(t) - H):
            rows = np.arange(e - L + 1, e + H + 1)
            if np.any(np.diff(t[rows]) > m.max_gap):
                continue
            k = round((t[e] - t0) / step) - first_origin
            if k < 0 or k % K or t[e + H] < b.test_start:
                continue
            out["t"].append(t[e])
            out["sid"].append(series_id(str(name)))
            out["x"].append(v[e - L + 1:e + 1])
            out["y"].append(v[e + H, [FEATURES.index("y")]])
    return sort_windows({k: np.array(v) for k, v in out.items()})


@pytest.mark.parametrize("extra", [[], ["--full-shuffle"]], ids=["blocks", "full-shuffle"])
def test_backtest_windows_match_the_raw_rows(tmp_path, extra):
    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 3, "parquet")
    run(job_args(pattern, tmp_path / "out", "--backtest-every", str(K), "--chunk-rows", "300", *extra))
    m = load_manifest(tmp_path / "out")
    got = sort_windows(read_split(tmp_path / "out", "backtest"))
    ref = reference(df, m)
    assert m.windows("backtest") == len(got["t"]) == len(ref["t"]) > 20
    np.testing.assert_array_equal(got["t"], ref["t"])
    np.testing.assert_array_equal(got["sid"], ref["sid"])
    np.testing.assert_allclose(got["x"], ref["x"], atol=2e-6)
    np.testing.assert_allclose(got["y"].reshape(len(got["y"]), -1), ref["y"], atol=2e-6)
    # the first origins' inputs reach back before the test range; each origin is K steps after the last
    first_input = got["t"] - (L - 1) * m.step
    assert first_input.min() < m.split_boundaries.test_start <= got["t"].min() + H * m.step
    assert set(np.diff(np.unique(got["t"])) // m.step) == {K}
    assert len(m.shards["backtest"]) == 8 and m.counts.windows["backtest"] == len(ref["t"])


def test_no_backtest_files_without_the_flag(tmp_path):
    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 1, "parquet")
    run(job_args(pattern, tmp_path / "out"))
    m = load_manifest(tmp_path / "out")
    assert "backtest" not in m.shards and m.windows("backtest") == 0
    assert not list((tmp_path / "out").glob("backtest-*"))
