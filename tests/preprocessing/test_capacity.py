"""The local-run estimate: rows from the files' heads, memory per unit, disk for staging and shards,
and a run that cannot fit refused in seconds with the estimate and the fix, leaving nothing behind."""

import os
import time

import numpy as np
import pandas as pd
import pytest

from preprocessing import capacity
from preprocessing.cli import run
from preprocessing.errors import InputError
from tests.helpers import job_args, multi_series, write_files
from tests.preprocessing.units import config


def test_sample_rows_reads_parquet_footers_and_csv_heads(tmp_path):
    df = pd.DataFrame({"ts": pd.date_range("2022-01-01", periods=5000, freq="h"), "x": np.arange(5000.0)})
    df.to_parquet(tmp_path / "a.parquet", index=False)
    df.iloc[:1234].to_parquet(tmp_path / "b.parquet", index=False)
    paths = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    sizes = [os.path.getsize(p) for p in paths]
    assert capacity.sample_rows(paths, sizes) == 6234
    df.to_csv(tmp_path / "c.csv", index=False)
    rows = capacity.sample_rows([str(tmp_path / "c.csv")], [os.path.getsize(tmp_path / "c.csv")])
    assert 4900 <= rows <= 5100


def test_estimate_follows_the_unit_not_the_table():
    cfg = config(chunk_rows=100_000, look_back=6, horizon=2)
    small, big = (capacity.estimate(cfg, rows, workers=1) for rows in (1_000_000, 100_000_000))
    assert small.memory == big.memory == capacity.BASE_BYTES + (100_000 + 7) * (100 + 90 * 2)
    assert big.disk == 100 * small.disk
    assert capacity.estimate(cfg, 1_000_000, workers=2).memory == 2 * small.memory
    assert capacity.estimate(cfg, 50_000, workers=1).unit_rows == 50_007


def test_check_names_the_estimate_the_machine_and_the_fix():
    cfg = config(chunk_rows=100_000)
    est = capacity.estimate(cfg, 1_000_000, workers=1)
    capacity.check(est, capacity.Machine(memory=10 * est.memory, disk=10 * est.disk), cfg)
    capacity.check(est, capacity.Machine(memory=None, disk=None), cfg)  # unknown: no verdict
    with pytest.raises(InputError, match=r"needs about 0\.\d GB of memory.*machine has 0\.\d GB available.*"
                                         r"--chunk-rows.*DataflowRunner"):
        capacity.check(est, capacity.Machine(memory=est.memory, disk=None), cfg)
    with pytest.raises(InputError, match=r"needs about .* GB of disk under out .*only 0\.0 GB is free.*--stride"):
        capacity.check(est, capacity.Machine(memory=None, disk=1000), cfg)


def test_a_run_that_cannot_fit_fails_in_seconds_and_leaves_nothing(tmp_path, monkeypatch):
    pattern = write_files(multi_series(), tmp_path / "in", 2, "parquet")
    monkeypatch.setattr(capacity, "machine", lambda output: capacity.Machine(memory=100 << 20, disk=None))
    started = time.time()
    with pytest.raises(InputError, match="of memory .* available"):
        run(job_args(pattern, tmp_path / "out"))
    assert time.time() - started < 10
    assert not (tmp_path / "out").exists()
    # the estimate is a local-run check: skipped on request
    run(job_args(pattern, tmp_path / "out", "--no-capacity-check"))
    assert (tmp_path / "out" / "metadata.json").exists()
