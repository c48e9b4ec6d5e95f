"""`python -m benchmarks.bench_accuracy`: seqscale's defaults against the classic Keras recipe on real data.

For each data set (benchmarks/accuracy_data.py), split by time as seqscale splits it
(first 70% of the time range train, 10% validation, last 20% test), in the same run:

  persistence  the last observed value;
  classic      the single-machine recipe users start from: StandardScaler fitted on the
               whole table (test rows included: the leak is part of the recipe), windows of
               20 rows, LSTM(128, return_sequences) -> LSTM(64) -> Dense(1), Adam at its
               default rate, batch 32, EarlyStopping(patience=5, restore_best_weights) on the
               validation rows, at most 50 epochs;
  seqscale     the Beam job and the trainer with their defaults (plus --calendar where the
               data has a calendar), one local worker; predictions from the exported model,
               which takes raw rows (and their timestamps).

All three are scored on the same test targets: every test row whose previous 48 rows are
gap-free test rows (so each model's whole window lies in the test range). RMSE in the
target's units; `ratio` = seqscale / classic (< 1: seqscale better). With --seeds N both
models train N times and the table shows the mean and the spread (min..max). `95% CI` is the
ratio's interval over the test targets (a paired moving-block bootstrap, blocks of n^(1/3)
consecutive targets for their autocorrelation): the spread says how much the seed moves the
result, the interval how much another test range of the same length could.
--quick: two epochs each, for a CI-sized check that the benchmark still runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from benchmarks.accuracy_data import DATASETS, Spec

CLASSIC_LOOK_BACK = 20
CONTEXT = 48  # rows before a scored target that must lie in the test range, gap-free


def series_frames(df: pd.DataFrame, spec: Spec):
    """(key, rows sorted by time) per series."""
    if spec.series is None:
        yield "", df.sort_values(spec.time).reset_index(drop=True)
        return
    for key, g in df.groupby(spec.series, sort=True):
        yield str(key), g.sort_values(spec.time).reset_index(drop=True)


def scored_targets(t: np.ndarray, test_start: int, step: int) -> np.ndarray:
    """Rows whose previous CONTEXT rows are gap-free and at or after test_start."""
    ok = []
    for i in range(CONTEXT, len(t)):
        if t[i - CONTEXT] >= test_start and t[i] - t[i - CONTEXT] == CONTEXT * step:
            ok.append(i)
    return np.array(ok, dtype=np.int64)


def classic_recipe(df: pd.DataFrame, spec: Spec, bounds, step: int, seed: int, epochs: int):
    """The classic recipe; returns {series key: predictions at its scored targets}."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    cols = list(spec.features)
    values = df[cols].to_numpy(np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)  # StandardScaler().fit(everything)
    ti = cols.index(spec.target)
    parts = {"train": ([], []), "val": ([], [])}
    tests = {}
    for key, g in series_frames(df, spec):
        x = ((g[cols].to_numpy(np.float64) - mean) / std).astype(np.float32)
        t = g[spec.time].astype("datetime64[ns]").astype(np.int64).to_numpy()
        ends = np.arange(CLASSIC_LOOK_BACK, len(x))  # target row; inputs are the 20 rows before it
        windows = np.stack([x[e - CLASSIC_LOOK_BACK:e] for e in ends])
        for split, keep in (("train", t[ends] < bounds.val_start),
                            ("val", (t[ends] >= bounds.val_start) & (t[ends] < bounds.test_start))):
            parts[split][0].append(windows[keep])
            parts[split][1].append(x[ends[keep], ti])
        rows = scored_targets(t, bounds.test_start, step)
        tests[key] = np.stack([x[r - CLASSIC_LOOK_BACK:r] for r in rows]) if len(rows) else None
    (xt, yt), (xv, yv) = [(np.concatenate(a), np.concatenate(b)) for a, b in parts.values()]
    model = tf.keras.Sequential([
        tf.keras.layers.Input(shape=(CLASSIC_LOOK_BACK, len(cols))),
        tf.keras.layers.LSTM(128, return_sequences=True),
        tf.keras.layers.LSTM(64),
        tf.keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse")
    model.fit(xt, yt, validation_data=(xv, yv), epochs=epochs, batch_size=32, verbose=0,
              callbacks=[tf.keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    return {k: None if w is None else model.predict(w, verbose=0)[:, 0] * std[ti] + mean[ti] for k, w in tests.items()}


def seqscale(spec: Spec, work: str, seed: int, epochs: int | None, flags: tuple[str, ...] = ()):
    """Preprocess + train with the defaults; returns (manifest, {series: predictions}, seconds)."""
    from preprocessing.cli import run as preprocess
    from training.data import load_manifest
    from training.export import load_predictor

    data = os.path.join(work, "data")
    if not os.path.exists(os.path.join(data, "metadata.json")):
        preprocess(spec.preprocess_args(data))
    m = load_manifest(data)
    job = os.path.join(work, f"job-{seed}")
    started = time.time()
    cmd = [sys.executable, "-m", "training", "--data", data, "--job-dir", job, "--seed", str(seed),
           "--verbose", "line", "--log-level", "warning", *(["--epochs", str(epochs)] if epochs else []), *flags]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode:
        raise SystemExit(f"seqscale training failed on {spec.name} ({done.returncode}):\n{done.stderr[-3000:]}")
    predict = load_predictor(os.path.join(job, "export"))
    df = pd.read_parquet(spec.path)
    out = {}
    L = m.window.look_back
    for key, g in series_frames(df, spec):
        t = g[spec.time].astype("datetime64[ns]").astype(np.int64).to_numpy()
        rows = scored_targets(t, m.split_boundaries.test_start, m.step)
        if not len(rows):
            out[key] = None
            continue
        raw = g[list(m.file_features)].to_numpy(np.float32)
        x = np.stack([raw[r - L:r] for r in rows])
        times = np.stack([t[r - L:r] for r in rows]) if m.calendar else None
        keys = [key] * len(rows) if m.scale_by == "series" else None
        out[key] = predict(x, times, keys).reshape(len(rows), -1)[:, 0]
    with open(os.path.join(job, "history.json")) as f:
        epochs_run = len(json.load(f)["epochs"])
    return m, out, time.time() - started, epochs_run


def scored(truth: dict) -> list:
    """The series with scored test targets, in one order for every model's predictions."""
    return [k for k in truth if truth[k] is not None]


def flat(pred: dict, keys: list) -> np.ndarray:
    return np.concatenate([pred[k] for k in keys])


def rmse(truth: dict, pred: dict) -> float:
    keys = scored(truth)
    return float(np.sqrt(np.mean((flat(truth, keys) - flat(pred, keys)) ** 2)))


def ratio_interval(truth: np.ndarray, ours: np.ndarray, classic: np.ndarray, draws: int = 1000,
                   seed: int = 0) -> tuple[float, float]:
    """95% interval of mean-over-seeds RMSE(ours) / mean RMSE(classic) over resampled test targets.

    Paired: each draw takes the same targets (blocks of n^(1/3) consecutive ones, so the
    errors' autocorrelation stays inside a block) for both models and every seed, which is
    what makes a 2% difference on a few hundred targets measurable or not. ours and classic
    are (seeds, n) predictions on the targets `truth` (n,).
    """
    n = len(truth)
    block = max(1, round(n ** (1 / 3)))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(draws, -(-n // block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(draws, -1)[:, :n]

    def mean_rmse(preds: np.ndarray) -> np.ndarray:
        return np.mean([np.sqrt(np.mean(((p - truth) ** 2)[idx], axis=1)) for p in preds], axis=0)

    ratios = mean_rmse(ours) / mean_rmse(classic)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def bench(spec: Spec, work: str, seeds: list[int], epochs: int | None, flags: tuple[str, ...] = ()) -> dict:
    df = pd.read_parquet(spec.path)
    m, first, secs, ep = seqscale(spec, work, seeds[0], epochs, flags)
    truth, last = {}, {}
    for key, g in series_frames(df, spec):
        t = g[spec.time].astype("datetime64[ns]").astype(np.int64).to_numpy()
        rows = scored_targets(t, m.split_boundaries.test_start, m.step)
        y = g[spec.target].to_numpy(np.float64)
        truth[key], last[key] = (y[rows], y[rows - 1]) if len(rows) else (None, None)
    runs = [(first, secs, ep)] + [seqscale(spec, work, s, epochs, flags)[1:] for s in seeds[1:]]
    ours = [rmse(truth, r[0]) for r in runs]
    mean_of_seeds = {k: None if truth[k] is None else np.mean([r[0][k] for r in runs], axis=0) for k in truth}
    classic, classic_secs, classic_preds = [], [], []
    for s in seeds:
        started = time.time()
        classic_preds.append(classic_recipe(df, spec, m.split_boundaries, m.step, s, epochs or 50))
        classic.append(rmse(truth, classic_preds[-1]))
        classic_secs.append(time.time() - started)
    keys = scored(truth)
    interval = ratio_interval(flat(truth, keys), np.stack([flat(r[0], keys) for r in runs]),
                              np.stack([flat(c, keys) for c in classic_preds]))
    return {"dataset": spec.name, "frequency": spec.frequency, "series": 1 if spec.series is None else df[spec.series].nunique(),
            "targets": int(sum(len(v) for v in truth.values() if v is not None)),
            "persistence": rmse(truth, last), "classic": classic, "seqscale": ours,
            "seqscale_ensemble": rmse(truth, mean_of_seeds), "ratio_95": list(interval),
            "seqscale_epochs": [r[2] for r in runs], "seqscale_seconds": [r[1] for r in runs],
            "classic_seconds": classic_secs, "calendar": list(spec.calendar), "look_back": m.window.look_back, "train_flags": list(flags)}


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ({min(values):.4f}..{max(values):.4f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="two epochs each (checks that the benchmark runs)")
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS))
    p.add_argument("--seeds", type=int, default=1, help="training runs per model (mean and spread)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--train-flags", default="", help="extra trainer flags for seqscale's runs, e.g. --train-flags='--dropout 0' "
                   "(to measure a candidate default across seeds; the classic recipe is unchanged)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        for name in args.datasets.split(","):
            work = os.path.join(tmp, name)
            os.makedirs(work)
            spec = DATASETS[name](work)
            started = time.time()
            results.append(bench(spec, work, list(range(args.seeds)), 2 if args.quick else None, tuple(shlex.split(args.train_flags))))
            print(f"[bench_accuracy] {name}: {time.time() - started:.0f} s", flush=True)
    print(f"\n{'data set':<18}{'freq':<8}{'series':>7}{'targets':>9}{'persistence':>13}  {'classic recipe':<28}"
          f"{'seqscale':<28}{'ratio':>7}{'95% CI':>14}{'vs persistence':>16}{'mean of seeds':>15}")
    for r in results:
        lo, hi = r["ratio_95"]
        ratio = np.mean(r["seqscale"]) / np.mean(r["classic"])
        below = 1 - np.mean(r["seqscale"]) / r["persistence"]
        print(f"{r['dataset']:<18}{r['frequency']:<8}{r['series']:>7}{r['targets']:>9}{r['persistence']:>13.4f}  "
              f"{spread(r['classic']):<28}{spread(r['seqscale']):<28}{ratio:>7.3f}"
              f"{f'{lo:.3f}..{hi:.3f}':>14}{-below:>+16.1%}"
              f"{r['seqscale_ensemble']:>15.4f}")
    print("RMSE in the target's units on the same test targets; ratio = seqscale / classic (< 1: seqscale better),\n"
          "95% CI: its interval over resampled test targets (paired moving-block bootstrap);\n"
          "vs persistence: seqscale's mean RMSE relative to persistence; mean of seeds: RMSE of the seeds' averaged "
          "predictions (an ensemble)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
