"""`python -m benchmarks.bench_accuracy`: seqscale's defaults against the classic Keras recipe on real data.

For each data set (benchmarks/accuracy_data.py), split by time as seqscale splits it
(first 70% of the time range train, 10% validation, last 20% test), in the same run:

  persistence  the last observed value;
  classic      the single-machine recipe users start from: StandardScaler fitted on the
               whole table (test rows included: the leak is part of the recipe), windows of
               20 rows, LSTM(128, return_sequences) -> LSTM(64) -> Dense(1), Adam at its
               default rate, batch 32, EarlyStopping(patience=5, restore_best_weights) on the
               validation rows, at most 50 epochs;
  lightgbm     gradient-boosted trees (LightGBM) on lag features, configured as a forecaster
               would: the target's last two seasons, every other feature's last season, the
               target time's calendar parts (and the series as a category), per-series
               standardization where seqscale scales by series; the grid point (tree size,
               leaf data) with the lowest validation RMSE, each early-stopped on validation;
  seqscale     the Beam job and the trainer with their defaults (plus --calendar where the
               data has a calendar), one local worker; predictions from the exported model,
               which takes raw rows (and their timestamps). With --train-flags='--quantiles
               0.1,0.5,0.9' the table also lists each run's test intervals from eval.json
               beside the naive ones.

All three are scored on the same test targets: every test row whose previous 48 rows are
gap-free test rows (so each model's whole window lies in the test range). RMSE in the
target's units; `ratio` = seqscale / that model (< 1: seqscale better), per baseline. With --seeds N both
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

from benchmarks.accuracy_data import DAILY_PUBLISHED, DATASETS, PROTOCOLS, Spec

CLASSIC_LOOK_BACK = 20
BASELINES = {"classic": "classic recipe", "lightgbm": "LightGBM on lags"}
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


# LightGBM as a forecaster configures it: lag features of the same rows, parameters chosen on
# the validation range, early-stopped there; the grid's points differ in tree size and leaf data
LGB_GRID = ({"num_leaves": 31, "min_child_samples": 20}, {"num_leaves": 127, "min_child_samples": 100})
LGB_FIXED = {"objective": "regression", "learning_rate": 0.05, "bagging_fraction": 0.8, "bagging_freq": 1,
             "feature_fraction": 0.8, "verbose": -1, "num_threads": 2}
LGB_ROUNDS, LGB_PATIENCE = 10_000, 200
# the target as it is, or its change from the last value (a level-trained tree cannot forecast a
# level beyond its training range: a trending series' test range); chosen on validation too
LGB_TARGETS = ("level", "change")
CALENDAR_PARTS = {"hour": "hour", "dayofweek": "day_of_week", "dayofyear": "day_of_year", "month": "month"}


def lag_lengths(spec: Spec) -> tuple[int, int]:
    """(target lags, lags of every other feature): two seasons of the target and one of the
    others, within the CONTEXT rows every scored target has in the test range."""
    return min(2 * spec.season, CONTEXT), min(spec.season, CONTEXT)


def lag_rows(g: pd.DataFrame, spec: Spec, step: int, center: float = 0.0, scale: float = 1.0):
    """(target rows, features, target) of one series: every row with P gap-free rows before it;
    features = the target's last P values, every other feature's last L, the target time's
    calendar parts; the target and its lags as (value - center) / scale."""
    from numpy.lib.stride_tricks import sliding_window_view

    P, L = lag_lengths(spec)
    t = g[spec.time].astype("datetime64[ns]").astype(np.int64).to_numpy()
    y = (g[spec.target].to_numpy(np.float64) - center) / scale
    if len(y) <= P:
        return np.zeros(0, np.int64), np.zeros((0, 0)), np.zeros(0)
    rows = np.arange(P, len(y))
    rows = rows[t[rows] - t[rows - P] == P * step]
    parts = [sliding_window_view(y, P)[rows - P][:, ::-1]]  # lag 1 first
    for f in spec.features:
        if f != spec.target:
            parts.append(sliding_window_view(g[f].to_numpy(np.float64), L)[rows - L][:, ::-1])
    if spec.calendar:
        when = pd.DatetimeIndex(t[rows])
        parts += [np.asarray(getattr(when, CALENDAR_PARTS[c]), np.float64)[:, None] for c in spec.calendar]
    return rows, np.concatenate(parts, axis=1), y[rows]


def lightgbm_forecaster(df: pd.DataFrame, spec: Spec, bounds, step: int, seed: int) -> tuple[dict, dict]:
    """LightGBM on lag features ({series key: predictions at its scored targets}, what was chosen).

    Trained on the targets before the validation start, each grid point (the target as a level or
    as its change from the last value, tree size) early-stopped on the validation targets; the
    point with the lowest validation RMSE in original units predicts the test targets.
    With `--scale-by series` data, each series' target is standardized by its training rows
    (the series without any use the global training statistics), as seqscale does."""
    import lightgbm as lgb

    glob = df.loc[df[spec.time].astype("datetime64[ns]").astype(np.int64) < bounds.val_start, spec.target]
    P, _ = lag_lengths(spec)
    parts = {"train": ([], [], []), "val": ([], [], [])}
    tests, norm = {}, {}
    for code, (key, g) in enumerate(series_frames(df, spec)):
        t = g[spec.time].astype("datetime64[ns]").astype(np.int64).to_numpy()
        tr = g.loc[t < bounds.val_start, spec.target]
        use = tr if spec.scale_by_series and len(tr) > 1 and tr.std() > 0 else glob
        norm[key] = (float(use.mean()), float(use.std())) if spec.scale_by_series else (0.0, 1.0)
        rows, x, y = lag_rows(g, spec, step, *norm[key])
        if spec.series is not None:
            x = np.concatenate([x, np.full((len(x), 1), float(code))], axis=1)
        for split, keep in (("train", t[rows] < bounds.val_start),
                            ("val", (t[rows] >= bounds.val_start) & (t[rows] < bounds.test_start))):
            parts[split][0].append(x[keep])
            parts[split][1].append(y[keep])
            parts[split][2].append(np.full(keep.sum(), norm[key][1]))
        scored = scored_targets(t, bounds.test_start, step)
        at = np.searchsorted(rows, scored)
        assert np.array_equal(rows[at], scored), "a scored target without its lags"  # CONTEXT >= the lags
        tests[key] = x[at] if len(scored) else None
    (xt, yt, _), (xv, yv, sv) = [tuple(np.concatenate(a) for a in split) for split in parts.values()]
    categorical = [xt.shape[1] - 1] if spec.series is not None else []

    def relative(x):  # the target's lags minus its last value (lag 1 is column 0)
        x = x.copy()
        x[:, :P] -= x[:, :1]
        return x

    best = None
    for target, params in [(t, p) for t in LGB_TARGETS for p in LGB_GRID]:
        diff = target == "change"
        a, b = (relative(xt), yt - xt[:, 0]) if diff else (xt, yt)
        c, d = (relative(xv), yv - xv[:, 0]) if diff else (xv, yv)
        train = lgb.Dataset(a, b, categorical_feature=categorical, free_raw_data=False)
        valid = lgb.Dataset(c, d, reference=train, categorical_feature=categorical)
        model = lgb.train({**LGB_FIXED, **params, "seed": seed}, train, LGB_ROUNDS, valid_sets=[valid],
                          callbacks=[lgb.early_stopping(LGB_PATIENCE, verbose=False)])
        pred = model.predict(c, num_iteration=model.best_iteration) + (xv[:, 0] if diff else 0)
        val = float(np.sqrt(np.mean(((pred - yv) * sv) ** 2)))  # original units: the two targets compare
        if best is None or val < best[0]:
            best = (val, target, params, model)
    val, target, params, model = best

    def forecast(x):
        diff = target == "change"
        return model.predict(relative(x) if diff else x, num_iteration=model.best_iteration) + (x[:, 0] if diff else 0)

    out = {k: None if x is None else forecast(x) * norm[k][1] + norm[k][0] for k, x in tests.items()}
    return out, {"target": target, **params, "trees": int(model.best_iteration), "val_rmse": val,
                 "features": int(xt.shape[1])}


def train_seqscale(spec: Spec, work: str, seed: int, epochs: int | None, flags: tuple[str, ...] = ()):
    """Preprocess (once per data set) + train with the defaults: (manifest, job dir, seconds)."""
    from preprocessing.cli import run as preprocess
    from training.data import load_manifest

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
    return m, job, time.time() - started


def epochs_run(job: str) -> int | list[int]:
    """Epochs a run trained: one number, or each member's with --members (members.json)."""
    members = os.path.join(job, "members.json")
    if os.path.exists(members):
        with open(members) as f:
            return [m["epochs_run"] for m in json.load(f)["members"]]
    with open(os.path.join(job, "history.json")) as f:
        return len(json.load(f)["epochs"])


def members_of(flags: tuple[str, ...]) -> int:
    """The most networks a run trains: --members N in the trainer flags, read by the trainer's own
    parser, or as many as --members auto (the default) trains at most."""
    from training.config import AUTO_MEMBERS, build_parser

    n = build_parser().parse_known_args(list(flags))[0].members
    return AUTO_MEMBERS if n in (None, "auto") else n


def daily_protocol(spec: Spec, work: str, seeds: list[int], epochs: int | None, flags: tuple[str, ...] = ()) -> dict:
    """The published 7-day protocol, scored by seqscale's own rolling-origin backtest
    (`--backtest-every 7` from the test start): eval.json's backtest RMSE over every origin and
    step, beside its persistence (the last day's total for all 7 days, "daily persistence"). A
    quantile run adds its test intervals: eval.json's test split, every day's 7-day window."""
    runs = []
    for seed in seeds:
        m, job, secs = train_seqscale(spec, work, seed, epochs, flags)
        with open(os.path.join(job, "eval.json")) as f:
            report = json.load(f)
        bt = report["backtest"]
        runs.append({"rmse": bt["model"]["original"]["rmse"], "origins": len(bt["per_origin"]), "windows": bt["windows"],
                     "persistence": bt["baselines"]["persistence"]["original"]["rmse"], "seconds": secs,
                     "epochs": epochs_run(job), "first_origin": str(bt["per_origin"][0]["origin"])[:10],
                     "last_origin": str(bt["per_origin"][-1]["origin"])[:10], "quantiles": quantile_summary(report)})
    return {"dataset": spec.name, "protocol": "7 days ahead from each Saturday, weekly walk-forward over the test range",
            "seqscale": [r["rmse"] for r in runs], "persistence": runs[0]["persistence"], "runs": runs,
            "published": DAILY_PUBLISHED, "look_back": m.window.look_back, "train_flags": list(flags)}


def seqscale(spec: Spec, work: str, seed: int, epochs: int | None, flags: tuple[str, ...] = ()):
    """Train with the defaults and forecast the scored test targets from the export: (manifest,
    {series: predictions}, seconds, epochs run, a quantile run's test intervals)."""
    from training.export import load_predictor

    m, job, secs = train_seqscale(spec, work, seed, epochs, flags)
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
    with open(os.path.join(job, "eval.json")) as f:
        intervals = quantile_summary(json.load(f))
    return m, out, secs, epochs_run(job), intervals


def quantile_summary(report: dict) -> dict | None:
    """A quantile run's central intervals on its test split (eval.json): coverage and mean width
    of the model's and of the naive baselines' (their own training-error quantiles)."""
    q = report.get("quantiles")
    if not q:
        return None
    def pick(r):
        return {f"{i['lower']:g}-{i['upper']:g}": {"coverage": i["coverage"], "width": i["mean_width"],
                                                   "score": i["interval_score"]} for i in r["intervals"]}
    return {"model": pick(q), "observed": q["observed"], "mean_pinball": q["mean_pinball"],
            **{name: pick(b) for name, b in q.get("baselines", {}).items()}}


def print_intervals(dataset: str, runs: list) -> None:
    """Each quantile run's test intervals, the model's beside the naive baselines'."""
    for seed, q in enumerate(runs):
        if q:
            print(f"{dataset} seed {seed} intervals (test split, eval.json): " + "; ".join(
                f"{who} {lvl}: coverage {v['coverage']:.3f} width {v['width']:.4g} score {v['score']:.4g}"
                for who in ("model", "persistence", "seasonal_persistence") if who in q
                for lvl, v in q[who].items()))


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


def bench(spec: Spec, work: str, seeds: list[int], epochs: int | None, flags: tuple[str, ...] = (),
          baselines: tuple[str, ...] = ("classic", "lightgbm")) -> dict:
    df = pd.read_parquet(spec.path)
    m, first, secs, ep, qs = seqscale(spec, work, seeds[0], epochs, flags)
    truth, last = {}, {}
    for key, g in series_frames(df, spec):
        t = g[spec.time].astype("datetime64[ns]").astype(np.int64).to_numpy()
        rows = scored_targets(t, m.split_boundaries.test_start, m.step)
        y = g[spec.target].to_numpy(np.float64)
        truth[key], last[key] = (y[rows], y[rows - 1]) if len(rows) else (None, None)
    runs = [(first, secs, ep, qs)] + [seqscale(spec, work, s, epochs, flags)[1:] for s in seeds[1:]]
    ours = [rmse(truth, r[0]) for r in runs]
    mean_of_seeds = {k: None if truth[k] is None else np.mean([r[0][k] for r in runs], axis=0) for k in truth}
    keys = scored(truth)
    out = {"dataset": spec.name, "frequency": spec.frequency,
           "series": 1 if spec.series is None else df[spec.series].nunique(),
           "targets": int(sum(len(v) for v in truth.values() if v is not None)),
           "persistence": rmse(truth, last), "seqscale": ours, "seqscale_ensemble": rmse(truth, mean_of_seeds),
           "seqscale_epochs": [r[2] for r in runs], "seqscale_seconds": [r[1] for r in runs],
           "calendar": list(spec.calendar), "look_back": m.window.look_back, "train_flags": list(flags)}
    if any(r[3] for r in runs):
        out["quantiles"] = [r[3] for r in runs]
    ours_flat = np.stack([flat(r[0], keys) for r in runs])
    for name in baselines:
        preds, secs_, chosen = [], [], []
        for s in range(len(seeds)):  # 0, 1, 2 whatever seqscale's seeds (--members spaces those)
            started = time.time()
            if name == "classic":
                preds.append(classic_recipe(df, spec, m.split_boundaries, m.step, s, epochs or 50))
            else:
                p, info = lightgbm_forecaster(df, spec, m.split_boundaries, m.step, s)
                preds.append(p)
                chosen.append(info)
            secs_.append(time.time() - started)
        out[name] = [rmse(truth, p) for p in preds]
        out[f"{name}_seconds"] = secs_
        out[f"ratio_{name}_95"] = list(ratio_interval(flat(truth, keys), ours_flat,
                                                      np.stack([flat(p, keys) for p in preds])))
        if chosen:
            out[f"{name}_chosen"] = chosen
    return out


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ({min(values):.4f}..{max(values):.4f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="two epochs each (checks that the benchmark runs)")
    p.add_argument("--datasets", default=",".join([*DATASETS, *PROTOCOLS]),
                   help="comma-separated: " + ", ".join([*DATASETS, *PROTOCOLS]))
    p.add_argument("--seeds", type=int, default=1, help="training runs per model (mean and spread)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--train-flags", default="", help="extra trainer flags for seqscale's runs, e.g. --train-flags='--dropout 0' "
                   "(to measure a candidate default across seeds; the classic recipe is unchanged)")
    p.add_argument("--baselines", default=",".join(BASELINES), help="the models seqscale is compared with: "
                   + ", ".join(f"{k} ({v})" for k, v in BASELINES.items()))
    args = p.parse_args(argv)
    baselines = tuple(b for b in args.baselines.split(",") if b)
    unknown = set(baselines) - set(BASELINES)
    if unknown:
        p.error(f"--baselines: unknown {sorted(unknown)}; choose from {', '.join(BASELINES)}")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results, protocols = [], []
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        for name in args.datasets.split(","):
            work = os.path.join(tmp, name)
            os.makedirs(work)
            started = time.time()
            flags = tuple(shlex.split(args.train_flags))
            # with --members N each run trains seeds seed..seed+N-1: runs N apart share no member
            seeds, epochs = [i * members_of(flags) for i in range(args.seeds)], 2 if args.quick else None
            if name in PROTOCOLS:
                protocols.append(daily_protocol(PROTOCOLS[name](work), work, seeds, epochs, flags))
            else:
                results.append(bench(DATASETS[name](work), work, seeds, epochs, flags, baselines))
            print(f"[bench_accuracy] {name}: {time.time() - started:.0f} s", flush=True)
    if results:
        print(f"\n{'data set':<18}{'freq':<8}{'series':>7}{'targets':>9}{'persistence':>13}  {'seqscale':<31}"
              + "".join(f"{label:<31}{'ratio':>7}{'95% CI':>14}  " for name, label in BASELINES.items() if name in baselines)
              + f"{'vs persistence':>16}{'mean of seeds':>15}")
        for r in results:
            below = 1 - np.mean(r["seqscale"]) / r["persistence"]
            line = (f"{r['dataset']:<18}{r['frequency']:<8}{r['series']:>7}{r['targets']:>9}{r['persistence']:>13.4f}  "
                    f"{spread(r['seqscale']):<30} ")
            for name in BASELINES:
                if name in baselines:
                    lo, hi = r[f"ratio_{name}_95"]
                    line += (f"{spread(r[name]):<30} {np.mean(r['seqscale']) / np.mean(r[name]):>7.3f}"
                             f"{f'{lo:.3f}..{hi:.3f}':>14}  ")
            print(line + f"{-below:>+16.1%}{r['seqscale_ensemble']:>15.4f}")
        print("RMSE in the target's units on the same test targets; ratio = seqscale / that model (< 1: seqscale better),\n"
              "95% CI: its interval over resampled test targets (paired moving-block bootstrap);\n"
              "vs persistence: seqscale's mean RMSE relative to persistence; mean of seeds: RMSE of the seeds' averaged "
              "predictions (an ensemble)")
        for r in results:
            print_intervals(r["dataset"], r.get("quantiles", []))
    for r in protocols:
        one = r["runs"][0]
        print(f"\n{r['dataset']}: {r['protocol']} ({one['origins']} origins {one['first_origin']} .. "
              f"{one['last_origin']}, {one['windows']} windows): seqscale {spread(r['seqscale'])}, daily persistence "
              f"{r['persistence']:.1f}; published: " + ", ".join(f"{k} {v}" for k, v in DAILY_PUBLISHED.items()))
        print_intervals(r["dataset"], [run["quantiles"] for run in r["runs"]])
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results + protocols, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
