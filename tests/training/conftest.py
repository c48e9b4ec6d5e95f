"""A small real dataset (written by the Beam job) for the trainer tests."""

import numpy as np
import pandas as pd
import pytest

from preprocessing.cli import run as preprocess


def sines(seed=0, n=1500, series=3) -> pd.DataFrame:
    """Several series of sines + trend + noise; y depends on past x1/x2 (learnable)."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(series):
        k = np.arange(n)
        x1 = np.sin(2 * np.pi * k / 24 + s) + 0.05 * rng.normal(size=n)
        x2 = np.cos(2 * np.pi * k / 60) + 0.002 * k + 0.05 * rng.normal(size=n)
        y = 2 * np.roll(x1, 3) + x2 + 0.05 * rng.normal(size=n) + 10 * s
        frames.append(pd.DataFrame({"t": k, "sid": f"s{s}", "x1": x1, "x2": x2, "y": y}))
    return pd.concat(frames, ignore_index=True)


def build_dataset(directory, *, shards="4", look_back="16", extra=()):
    raw = directory / "raw.parquet"
    directory.mkdir(parents=True, exist_ok=True)
    sines().to_parquet(raw, index=False)
    out = directory / "data"
    preprocess(["--input", str(raw), "--output", str(out), "--time-column", "t", "--series-column", "sid",
                "--features", "x1,x2,y", "--targets", "y", "--look-back", look_back, "--horizon", "1",
                "--train-shards", shards, "--eval-shards", "2", *extra])
    return out


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("ds"))
