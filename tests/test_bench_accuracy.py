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
    for name in ("classic", "seqscale"):
        assert len(r[name]) == 1 and 0 < r[name][0] < 10 * r["persistence"], (name, r[name])
