"""Benchmark: the doctor's wall time on the demo's data, against one epoch of that training.

The doctor is worth running before every long job only if it is quick: target <= 60 s on
2 cores for the demo's dataset and flags (household power hourly, L=48, 11 features, LSTM
128,64, planned for 2 replicas), as a user runs it (`python -m training.doctor`, a fresh
process, TensorFlow import included). The reference, measured in the same run: one epoch of
plain Keras `model.fit` with the same model, batch and windows held in numpy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

TARGET_SECONDS = 60.0


def one_epoch_seconds(data: str) -> float:
    """A full epoch of the demo's model on the train windows (numpy in memory), after a warm-up."""
    import tensorflow as tf

    import training  # noqa: F401
    from demo.household_power import TRAIN_ARGS
    from training.config import build_parser, resolve
    from training.data import load_manifest, sample_windows
    from training.model import build_model, make_loss, resolve_head

    cfg = resolve(build_parser().parse_args(["--data", data, "--job-dir", "unused", *TRAIN_ARGS]))
    m = load_manifest(data)
    w = sample_windows(m, data, n=m.windows("train"))
    model = build_model(m, cfg.model, seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=make_loss(resolve_head(m, cfg.model)))
    model.fit(w["x"][:640], w["y"][:640], batch_size=128, epochs=1, verbose=0)  # 2 replicas x 64
    start = time.perf_counter()
    model.fit(w["x"], w["y"], batch_size=128, epochs=1, verbose=0)
    return time.perf_counter() - start


def main() -> int:
    from demo.household_power import TRAIN_ARGS, prepare_hourly, preprocess_args
    from preprocessing.cli import run

    work = tempfile.mkdtemp(prefix="seqscale-doctorbench-")
    try:
        raw = prepare_hourly(os.path.join(work, "raw"))
        data = os.path.join(work, "data")
        run(preprocess_args(raw, data))
        out = os.path.join(work, "doctor")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "training.doctor", "--data", data, "--raw", raw, "--out", out,
                               "--replicas", "2", *TRAIN_ARGS], capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        wall = time.perf_counter() - start
        print(proc.stdout[-4000:])
        with open(os.path.join(out, "doctor.json")) as f:
            verdicts = json.load(f)
        epoch = one_epoch_seconds(data)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"doctor on the demo data, {os.cpu_count()} cores: {wall:.1f} s wall (a fresh process, TF import "
          f"included) = {wall / epoch:.2f}x one training epoch of the same model ({epoch:.1f} s, plain Keras fit)")
    print("per check: " + ", ".join(f"{v['check']} {v['seconds']:.1f} s" for v in verdicts))
    statuses = {v["check"]: v["status"] for v in verdicts}
    all_pass = set(statuses.values()) == {"PASS"}
    print(f"verdicts: {statuses} ({'all PASS' if all_pass else 'NOT all PASS'})")
    ok = wall <= TARGET_SECONDS and all_pass and proc.returncode == 0
    print(f"target (<= {TARGET_SECONDS:.0f} s, every check PASS on the demo data): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
