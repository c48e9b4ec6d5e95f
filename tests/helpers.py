"""Shared test helpers: synthetic series, running the Beam job, reading shards back, and an
independent numpy + Keras reference for what the job must produce."""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pandas as pd

from contract.manifest import Manifest
from contract.records import series_id

FEATURES = ("x1", "x2", "y")
TARGETS = ("y",)


def make_series(rng, name: str, start: str, n: int, *, freq="h", gaps=(), offset=0.0) -> pd.DataFrame:
    """One series with a daily sine, a trend, noise, and optional gaps (rows removed)."""
    t = pd.date_range(start, periods=n, freq=freq)
    k = np.arange(n)
    df = pd.DataFrame(
        {
            "ts": t,
            "series": name,
            "x1": np.sin(2 * np.pi * k / 24) + 0.1 * rng.normal(size=n),
            "x2": 1000 + 50 * np.cos(2 * np.pi * k / 24 / 7) + rng.normal(size=n) + offset,
            "y": 3 * np.sin(2 * np.pi * (k + 2) / 24) + 0.01 * k + rng.normal(size=n) * 0.2,
        }
    )
    keep = np.ones(n, dtype=bool)
    for a, b in gaps:
        keep &= ~((k >= a) & (k < b))
    df = df[keep]
    return df.reset_index(drop=True)


def multi_series(seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.concat(
        [
            make_series(rng, "alpha", "2021-01-01", 900, gaps=[(300, 310)]),
            make_series(rng, "beta", "2021-01-05", 700, offset=500),
            make_series(rng, "gamma", "2021-01-02", 1000, gaps=[(100, 103), (600, 700)]),
            make_series(rng, "delta", "2021-01-20", 30),  # shorter than look_back + horizon in some splits
        ],
        ignore_index=True,
    )


def write_files(df: pd.DataFrame, directory, n_files: int, fmt: str, seed: int = 0) -> str:
    """Scatter rows randomly over n files (unsorted, series interleaved); returns a glob."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    which = rng.integers(n_files, size=len(df))
    shuffled = df.sample(frac=1, random_state=seed)
    for i in range(n_files):
        part = shuffled[which[shuffled.index] == i]
        path = os.path.join(directory, f"part-{i}.{fmt}")
        if fmt == "parquet":
            part.to_parquet(path, index=False)
        else:
            part.to_csv(path, index=False)
    return os.path.join(str(directory), f"*.{fmt}")


def job_args(inputs: str, output, *extra: str, look_back=12, horizon=2, series=True) -> list[str]:
    args = [
        "--input", inputs, "--output", str(output), "--time-column", "ts",
        "--features", ",".join(FEATURES), "--targets", ",".join(TARGETS),
        "--look-back", str(look_back), "--horizon", str(horizon),
    ]
    if series:
        args += ["--series-column", "series"]
    return args + list(extra)


def load_manifest(output) -> Manifest:
    with open(os.path.join(str(output), "metadata.json")) as f:
        return Manifest.from_json(f.read())


def read_split(output, split: str) -> dict[str, np.ndarray]:
    """Every window of a split, read back with tf.data through the trainer's decoder."""
    import tensorflow as tf

    from training.records import block_decoder, compression_type

    m = load_manifest(output)
    files = [os.path.join(str(output), s.file) for s in m.shards[split]]
    ds = tf.data.TFRecordDataset(files, compression_type=compression_type(m)).map(block_decoder(m, with_ids=True))
    parts = {k: [] for k in ("x", "y", "t", "sid")}
    for rec in ds:
        for k in parts:
            parts[k].append(rec[k].numpy())
    if not parts["x"]:
        return {"x": np.zeros((0,)), "y": np.zeros((0,)), "t": np.zeros(0, np.int64), "sid": np.zeros(0, np.int64)}
    return {k: np.concatenate(v) for k, v in parts.items()}


def sort_windows(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.lexsort((w["t"], w["sid"]))
    return {k: v[order] for k, v in w.items()}


def reference_windows(
    df: pd.DataFrame,
    *,
    val_start: int,
    test_start: int,
    look_back: int,
    horizon: int,
    max_gap: int,
    features=FEATURES,
    targets=TARGETS,
    series_col: str | None = "series",
    unscaled=(),
    per_series: bool = False,
) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """Independent reference: numpy stats on train rows, Keras windows per (series, segment, split) run.

    Columns in `unscaled` are written as they are (their mean/std still returned). With
    `per_series`, each series is scaled with its own train rows' mean/std (the global ones
    when it has none).
    """
    import tensorflow as tf

    df = df.copy()
    df["_t"] = df["ts"].astype("datetime64[ns]").astype(np.int64)
    cols = list(features) + [t for t in targets if t not in features]
    train = df[df["_t"] < val_start]
    mean = train[cols].to_numpy(np.float64).mean(axis=0)
    std = train[cols].to_numpy(np.float64).std(axis=0)
    out = {s: {"x": [], "y": [], "t": [], "sid": []} for s in ("train", "val", "test")}
    groups = df.groupby(series_col) if series_col else [("", df)]
    for name, g in groups:
        g = g.sort_values("_t")
        t = g["_t"].to_numpy()
        keep = np.array([c in unscaled for c in cols])
        own = g[g["_t"] < val_start][cols].to_numpy(np.float64)
        m, sd = (own.mean(axis=0), own.std(axis=0)) if per_series and len(own) else (mean, std)
        scaled = (g[cols].to_numpy(np.float64) - np.where(keep, 0, m)) / np.where(keep, 1, sd)
        x = scaled[:, [cols.index(c) for c in features]].astype(np.float32)
        y = scaled[:, [cols.index(c) for c in targets]].astype(np.float32)
        split = np.searchsorted([val_start, test_start], t, side="right")
        brk = np.flatnonzero((np.diff(t) > max_gap) | (np.diff(split) != 0)) + 1
        for a, b in zip(np.r_[0, brk], np.r_[brk, len(t)], strict=True):
            if b - a < look_back + horizon:
                continue
            ds = tf.keras.utils.timeseries_dataset_from_array(
                x[a : b - horizon], y[a + look_back - 1 + horizon : b], sequence_length=look_back, batch_size=100_000
            )
            xs, ys = next(iter(ds))
            ends = np.arange(a + look_back - 1, b - horizon)
            s = ("train", "val", "test")[split[a]]
            out[s]["x"].append(xs.numpy())
            out[s]["y"].append(ys.numpy())
            out[s]["t"].append(t[ends])
            out[s]["sid"].append(np.full(len(ends), series_id(str(name)), np.int64))
    result = {}
    for s, parts in out.items():
        result[s] = sort_windows({k: np.concatenate(v) for k, v in parts.items()}) if parts["x"] else None
    return result, mean, std


def capture_dataflow_job(monkeypatch) -> dict:
    """Observe the job DataflowRunner builds (with --dry_run: built, not submitted): the returned
    dict gets "job" when the pipeline runs."""
    from apache_beam.runners.dataflow import dataflow_runner

    built: dict = {}
    original = dataflow_runner.DataflowRunner.run_pipeline

    def capture(self, pipeline, options):
        result = original(self, pipeline, options)
        built["job"] = result.job
        return result

    monkeypatch.setattr(dataflow_runner.DataflowRunner, "run_pipeline", capture)
    return built
