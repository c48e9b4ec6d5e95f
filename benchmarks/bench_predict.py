"""Benchmark: seqscale-predict against the single-process floor, and evaluation memory vs the split.

  (a) forecast mode on 2,000,000 generated hourly rows as 10,000 series (look-back 24, the
      default LSTM, untrained: the cost does not depend on the weights), 1 worker, against
      benchmarks/predict_reference.py (pyarrow + numpy + the same SavedModel, one process),
      in rounds with the order rotated; and score mode (--split test) on the same table;
  (b) the same on the demo's hourly household power (one series, calendar features);
  (c) the trainer's evaluation (training/evaluate.py, streaming) at 1x and 10x the test
      windows (the same training rows), the memory a process adds while it evaluates, beside
      holding the split in memory (what evaluate did before, `collect`) at the same sizes.
Run: `python -m benchmarks.bench_predict [--only forecast|demo|eval] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from benchmarks.bench_scale import many_series_table
from benchmarks.measure import run_measured, scratch

SERIES, ROWS = 10_000, 2_000_000
TARGET = 2.0  # the bound: the Beam job within 2x the floor on one worker


def make_export(raw: str, work: str, flags: list[str], model_flags: tuple[str, ...] = ()) -> str:
    """Preprocess `raw` and export an untrained model of the default size, as the trainer exports."""
    from evaluation import report as er
    from preprocessing.cli import run as preprocess
    from training.config import build_parser, resolve
    from training.data import load_manifest
    from training.evaluate import evaluation_plan
    from training.export import export, load_series_scaling
    from training.model import build_model

    data = os.path.join(work, "data")
    preprocess(["--input", raw, "--output", data, "--log-level", "warning", *flags])
    m = load_manifest(data)
    cfg = resolve(build_parser().parse_args(["--data", data, "--job-dir", "unused", *model_flags]))
    series = load_series_scaling(m, data)
    out = os.path.join(work, "export")
    export(build_model(m, cfg.model, seed=0), m, out, series=series,
           evaluation=er.to_dict(evaluation_plan(m, data, series)))
    return out


def compare(name: str, export: str, raw: str, work: str, repeats: int) -> dict:
    """Rounds of (job, floor) in rotated order; each output removed before the next run."""
    py = sys.executable
    commands = {
        "job": [py, "-m", "prediction", "--export", export, "--input", raw, "--direct_num_workers", "1",
                "--log-level", "warning", "--output"],
        "floor": [py, "-m", "benchmarks.predict_reference", "--export", export, "--input", raw, "--output"],
    }
    runs: dict[str, list] = {k: [] for k in commands}
    for r in range(repeats):
        for k in (list(commands) if r % 2 == 0 else list(commands)[::-1]):
            out = os.path.join(work, f"out-{k}")
            m = run_measured([*commands[k], out], env={"TF_CPP_MIN_LOG_LEVEL": "2"})
            if m.returncode:
                raise SystemExit(f"{name} {k} failed:\n{m.output[-3000:]}")
            runs[k].append(m)
            if k == "job":
                with open(os.path.join(out, "predictions.json")) as f:
                    forecasts = json.load(f)["counts"]["series_forecast"]
            else:
                forecasts_floor = json.loads(m.output.strip().splitlines()[-1])["forecasts"]
            subprocess.run(["rm", "-rf", out], check=True)
    if forecasts != forecasts_floor:
        raise SystemExit(f"{name}: the job forecast {forecasts} series, the floor {forecasts_floor}")
    ratios = [a.seconds / b.seconds for a, b in zip(runs["job"], runs["floor"], strict=True)]
    row = {"name": name, "forecasts": forecasts,
           "job_s": statistics.median(m.seconds for m in runs["job"]),
           "floor_s": statistics.median(m.seconds for m in runs["floor"]),
           "job_mb": max(m.peak_rss_mb for m in runs["job"]), "floor_mb": max(m.peak_rss_mb for m in runs["floor"]),
           "ratio": statistics.median(ratios), "ratios": ratios}
    print(f"{name}: {forecasts:,} forecasts; job {row['job_s']:.1f} s ({forecasts / row['job_s']:,.0f}/s, "
          f"{row['job_mb']:,.0f} MB), floor {row['floor_s']:.1f} s ({forecasts / row['floor_s']:,.0f}/s, "
          f"{row['floor_mb']:,.0f} MB): job / floor {row['ratio']:.2f} (rounds {', '.join(f'{x:.2f}' for x in ratios)})",
          flush=True)
    return row


def score(name: str, export: str, raw: str, work: str) -> None:
    out = os.path.join(work, "scored")
    m = run_measured([sys.executable, "-m", "prediction", "--export", export, "--input", raw, "--output", out,
                      "--split", "test", "--direct_num_workers", "1", "--log-level", "warning"],
                     env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    if m.returncode:
        raise SystemExit(f"{name} score failed:\n{m.output[-3000:]}")
    with open(os.path.join(out, "predictions.json")) as f:
        n = json.load(f)["counts"]["windows_scored"]
    print(f"{name}: score mode --split test: {n:,} windows in {m.seconds:.1f} s ({n / m.seconds:,.0f} windows/s), "
          f"{m.peak_rss_mb:,.0f} MB", flush=True)
    subprocess.run(["rm", "-rf", out], check=True)


EVAL_SCRIPT = """
import json, os, sys, threading, time
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import training
from training.config import build_parser, resolve
from training.data import load_manifest
from training.evaluate import collect, evaluate
from training.model import build_model


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


data, mode = sys.argv[1], sys.argv[2]
m = load_manifest(data)
model = build_model(m, resolve(build_parser().parse_args(["--data", data, "--job-dir", "x", "--units", "16"])).model)
evaluate(model, m, data, batch=64) if mode == "stream" else None  # warm up: graphs, tf.data, allocator
peak, stop = [rss_mb()], threading.Event()


def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.02)


start = rss_mb()
t = threading.Thread(target=sample)
t.start()
if mode == "stream":
    evaluate(model, m, data)
else:
    parts = collect(model, m, data)
stop.set()
t.join()
print(json.dumps({"windows": m.windows("test"), "before_mb": start, "peak_mb": max(peak[0], rss_mb())}))
"""


def eval_memory(work: str) -> None:
    """Peak RSS of evaluating 1x and 10x the test windows, streaming vs holding the split."""
    import numpy as np
    import pandas as pd

    rows = {}
    for factor in (1, 10):
        n = 33_000 + 25_000 * factor  # the same 30,000 train and 3,000 validation rows; the test split grows
        rng = np.random.default_rng(factor)
        k = np.arange(n)
        df = pd.DataFrame({"t": k, **{f"c{j}": np.sin(k / (24 + j)) + 0.1 * rng.normal(size=n) for j in range(7)}})
        raw = os.path.join(work, f"eval-x{factor}.parquet")
        df.to_parquet(raw, index=False)
        data = os.path.join(work, f"eval-x{factor}")
        subprocess.run([sys.executable, "-m", "preprocessing", "--input", raw, "--output", data, "--time-column", "t",
                        "--features", ",".join(f"c{j}" for j in range(7)), "--targets", "c0", "--look-back", "60",
                        "--val-start", "30000", "--test-start", "33000", "--log-level", "warning"], check=True)
        for mode in ("stream", "collect"):
            out = subprocess.run([sys.executable, "-c", EVAL_SCRIPT, data, mode], capture_output=True, text=True,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            rows[(factor, mode)] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'evaluation':<34}{'test windows':>14}{'peak RSS MB':>13}{'above its start MB':>20}")
    for (factor, mode), r in rows.items():
        label = "streaming (evaluate)" if mode == "stream" else "whole split in memory (collect)"
        print(f"{label + f' x{factor}':<34}{r['windows']:>14,}{r['peak_mb']:>13,.0f}{r['peak_mb'] - r['before_mb']:>20,.0f}")
    growth = {mode: (rows[(10, mode)]["peak_mb"] - rows[(10, mode)]["before_mb"],
                     rows[(1, mode)]["peak_mb"] - rows[(1, mode)]["before_mb"]) for mode in ("stream", "collect")}
    print("memory the evaluation added, x10 vs x1: streaming "
          f"{growth['stream'][0]:,.0f} vs {growth['stream'][1]:,.0f} MB; holding the split "
          f"{growth['collect'][0]:,.0f} vs {growth['collect'][1]:,.0f} MB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("forecast", "demo", "eval"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", default=None, help="scratch directory (default: a temp dir, removed)")
    args = p.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores", flush=True)
    rows = []
    with scratch(args.work, "seqscale-bench-predict-") as work:
        if args.only in (None, "forecast"):
            d = os.path.join(work, "series")
            os.makedirs(d, exist_ok=True)
            raw = many_series_table(os.path.join(d, "table.parquet"), rows=ROWS, series=SERIES)
            export = make_export(raw, d, ["--time-column", "ts", "--series-column", "series", "--features", "x,y",
                                          "--targets", "y", "--look-back", "24"])
            rows.append(compare(f"{SERIES:,} series x {ROWS // SERIES} rows", export, raw, d, args.repeats))
            score(f"{SERIES:,} series", export, raw, d)
        if args.only in (None, "demo"):
            from demo.household_power import prepare_hourly, preprocess_args

            d = os.path.join(work, "demo")
            raw = prepare_hourly(os.path.join(d, "raw"))
            flags = preprocess_args(raw, "unused")[4:]  # the demo's flags after --input and --output
            export = make_export(raw, d, flags, ("--units", "128,64"))
            rows.append(compare("demo (1 series, calendar)", export, raw, d, args.repeats))
            score("demo", export, raw, d)
        if args.only in (None, "eval"):
            eval_memory(work)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    for r in rows:
        if r["forecasts"] >= 1000:
            ok = r["ratio"] <= TARGET
            print(f"target (the job within {TARGET}x the floor on one worker, {r['name']}): "
                  f"{'met' if ok else 'NOT met'} ({r['ratio']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
