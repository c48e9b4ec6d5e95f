"""`python -m benchmarks.study_defaults`: which trainer settings move accuracy across the benchmark's data sets.

A small, honest search: every candidate differs from the current defaults in one setting
(look-back, width, dropout, batch, learning rate and its scaling rule, decay, patience),
trains once per data set and seed (the same seeds for every candidate), and is judged by its
mean best validation loss only (scaled MSE on the validation split; the test split is never read, so the defaults
chosen here can still be judged on it by bench_accuracy). Each run is one network (`--members 1`,
the defaults' ensemble aside: a setting's effect on one network, at a third of the cost); the
"members 3" candidate is the ensemble, judged by its own validation loss. The table shows each candidate's
validation loss relative to the defaults per data set and their geometric mean; a setting
worth making the default lowers it on every set.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.accuracy_data import DATASETS, PROTOCOLS, Spec

CANDIDATES = {  # name -> (preprocessing flags, trainer flags), each one change from the defaults
    "defaults": ([], []),
    "look-back 48": (["--look-back", "48"], []),
    "look-back 12": (["--look-back", "12"], []),
    "look-back 24": (["--look-back", "24"], []),
    "units 64,32": ([], ["--units", "64,32"]),
    "units 256,128": ([], ["--units", "256,128"]),
    "dropout 0": ([], ["--dropout", "0"]),
    "dropout 0.1": ([], ["--dropout", "0.1"]),
    "dropout 0.2": ([], ["--dropout", "0.2"]),
    "batch 32": ([], ["--per-replica-batch-size", "32"]),
    "batch 128": ([], ["--per-replica-batch-size", "128"]),
    "batch 16": ([], ["--per-replica-batch-size", "16"]),
    "batch 8": ([], ["--per-replica-batch-size", "8"]),
    "AdamW": ([], ["--optimizer", "adamw"]),
    "LR 1e-2": ([], ["--base-lr", "1e-2"]),
    "LR 3e-3": ([], ["--base-lr", "3e-3"]),
    "LR 1e-3": ([], ["--base-lr", "1e-3"]),
    "LR 3e-4": ([], ["--base-lr", "3e-4"]),
    "LR rule linear, batch 128": ([], ["--per-replica-batch-size", "128", "--lr-scaling", "linear"]),
    "ema 0.99": ([], ["--ema", "0.99"]),
    "ema 0.9": ([], ["--ema", "0.9"]),
    "ema 0.95": ([], ["--ema", "0.95"]),
    "decay plateau": ([], ["--decay", "plateau"]),
    "decay cosine": ([], ["--decay", "cosine"]),
    "patience 5": ([], ["--patience", "5"]),
    "anchor last": ([], ["--anchor", "last"]),
    "anchor relative": ([], ["--anchor", "relative"]),
    "anchor none": ([], ["--anchor", "none"]),
    "anchor scaled": ([], ["--anchor", "scaled"]),
    "bidirectional": ([], ["--bidirectional"]),
    "units 128,64,32": ([], ["--units", "128,64,32"]),
    "members 3": ([], ["--members", "3"]),
    "members 3, batch 8": ([], ["--members", "3", "--per-replica-batch-size", "8"]),
    # per data set: the look-back of two seasons of its time step (the tree baseline's lags)
    "look-back 2 seasons": lambda spec: (["--look-back", str(2 * spec.season)], []),
    "look-back season+1": lambda spec: (["--look-back", str(spec.season + 1)], []),
    "look-back 2 seasons, anchor relative": lambda spec: (["--look-back", str(2 * spec.season)],
                                                          ["--anchor", "relative"]),
}


def flags_of(name: str, spec: Spec) -> tuple[list[str], list[str]]:
    """(preprocessing flags, trainer flags) of a candidate on one data set."""
    c = CANDIDATES[name]
    return c(spec) if callable(c) else c


def preprocess(spec: Spec, out: str, flags: list[str]) -> str:
    from preprocessing.cli import run

    if not os.path.exists(os.path.join(out, "metadata.json")):
        run(spec.preprocess_args(out, *flags))
    return out


def best_val(data: str, job: str, flags: list[str], seed: int) -> tuple[float, int, float]:
    started = time.time()
    cmd = [sys.executable, "-m", "training", "--data", data, "--job-dir", job, "--seed", str(seed), "--no-evaluate",
           "--verbose", "line", "--log-level", "warning", "--members", "1", *flags]  # a candidate's --members wins
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode:
        return float("nan"), 0, time.time() - started
    if os.path.exists(os.path.join(job, "members.json")):  # --members N: the ensemble's validation loss
        with open(os.path.join(job, "members.json")) as f:
            info = json.load(f)
        return info["val_loss"]["ensemble"], sum(m["epochs_run"] for m in info["members"]), time.time() - started
    with open(os.path.join(job, "history.json")) as f:
        epochs = json.load(f)["epochs"]
    key = "val_point_mse" if "val_point_mse" in epochs[0] else "val_loss"  # a mean head: its point forecast's MSE
    return min(e[key] for e in epochs), len(epochs), time.time() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join([*DATASETS, *PROTOCOLS]))
    p.add_argument("--candidates", default=";".join(CANDIDATES), help="semicolon-separated names from CANDIDATES")
    p.add_argument("--seeds", default="0", help="comma-separated seeds: each candidate trains once per seed, "
                   "judged by its mean best validation loss")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--work", help="keep the datasets and runs here (each job dir with its export and history), "
                   "e.g. for benchmarks.ensemble_validation; default: a temporary directory, removed")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    names = [n for n in args.candidates.split(";") if n]
    sets = args.datasets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, dict[str, dict]] = {n: {} for n in names}
    with contextlib.ExitStack() as stack:
        tmp = args.work or stack.enter_context(tempfile.TemporaryDirectory(prefix="study-defaults-"))
        specs = {}
        for ds in sets:
            os.makedirs(os.path.join(tmp, ds), exist_ok=True)
            specs[ds] = {**DATASETS, **PROTOCOLS}[ds](os.path.join(tmp, ds))
        # seeds outermost: a study stopped early has every candidate on the first seeds
        for seed in seeds:
            for ds in sets:
                spec, work, done = specs[ds], os.path.join(tmp, ds), {}
                for n in names:
                    pre, train = flags_of(n, spec)
                    key = (tuple(pre), tuple(train))
                    if key in done:  # the same flags as an earlier candidate on this set: the same run
                        val, epochs, secs = done[key]
                    else:
                        data = preprocess(spec, os.path.join(work, "data-" + "-".join(pre).replace("--", "")), pre)
                        job = os.path.join(work, f"job-{n.replace(' ', '_')}-{seed}")
                        val, epochs, secs = done[key] = best_val(data, job, train, seed)
                    entry = results[n].setdefault(ds, {"runs": []})
                    entry["runs"].append({"seed": seed, "val_loss": val, "epochs": epochs, "seconds": secs})
                    entry["val_loss"] = float(np.mean([r["val_loss"] for r in entry["runs"]]))
                    print(f"[study] {ds:<16} {n:<28} seed {seed} best val loss {val:.5g} ({epochs} epochs, {secs:.0f} s)",
                          flush=True)
                    if args.out:  # after every run, so a study stopped early keeps what it measured
                        with open(args.out, "w") as f:
                            json.dump(results, f, indent=2)
    reference, table = relative(results, names, sets)
    print(f"\n{'candidate':<28}" + "".join(f"{d:>18}" for d in sets) + f"{'geo. mean':>12}")
    for n, (rel, geo) in table.items():
        print(f"{n:<28}" + "".join(f"{r:>18.3f}" for r in rel) + f"{geo:>12.3f}")
    print(f"mean best validation loss over seeds {args.seeds} relative to {reference!r} (< 1: better); "
          "the test split is never read")
    return 0


def relative(results: dict, names: list[str], sets: list[str]) -> tuple[str, dict]:
    """(reference, {candidate: (its mean loss / the reference's per data set, their geometric mean)}):
    the reference is "defaults", or without it the first candidate (e.g. "members 3" against a variant)."""
    reference = "defaults" if "defaults" in names else names[0]
    table = {}
    for n in names:
        rel = [results[n][d]["val_loss"] / results[reference][d]["val_loss"] for d in sets]
        table[n] = (rel, float(np.exp(np.mean(np.log(rel)))))
    return reference, table


if __name__ == "__main__":
    sys.exit(main())
