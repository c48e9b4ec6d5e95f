"""Benchmark: is the input pipeline the bottleneck of training?

Same model (stacked LSTM 128, 64) and batch (256), one process on CPU, same run:
  trainer   model.fit on the trainer's tf.data pipeline reading the shards (then with the trainer's
            loss guard, early stopping and history, and with a guard reading the loss every step)
  numpy     plain Keras model.fit on the same windows held in numpy memory
  read      the tf.data pipeline alone (windows/s), against the model's consumption rate
  2 workers the real trainer as 2 processes over loopback (MultiWorkerMirroredStrategy)
Targets: trainer >= 0.9x numpy; read >= 5x the model's consumption.
Data: the household power data resampled hourly (make demo's dataset), L=24, 7 features.
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

import numpy as np

BATCH = 256
STEPS = 60
REPEATS = 3


def build_data(work: str) -> str:
    from demo.household_power import prepare_hourly
    from preprocessing.cli import run

    raw = prepare_hourly(os.path.join(work, "raw"))
    from demo.household_power import FEATURES, TIME

    out = os.path.join(work, "data")
    run(["--input", raw, "--output", out, "--time-column", TIME, "--features", ",".join(FEATURES),
         "--targets", FEATURES[0], "--look-back", "24", "--nan-policy", "ffill"])
    return out


def fit_rate(model, data, steps: int, **kw) -> float:
    """Samples/s of model.fit over `steps` steps, after one warm-up epoch of 10 steps."""
    model.fit(data, epochs=1, steps_per_epoch=10, verbose=0, **kw)
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, **kw)
    return steps * BATCH / (time.perf_counter() - start)


def callbacks(m, data: str, *, per_step: bool = False) -> list:
    """The trainer's per-step-relevant callbacks: the loss guard (its batch hook), early stopping and
    the history. `per_step` rebuilds the guard as it was before it read the loss every 32 steps."""
    import tensorflow as tf

    from training.data import read_windows
    from training.guard import FlatLossGuard

    sample = next(read_windows(m, data, "train", shuffle=False).batch(256).as_numpy_iterator())
    guard = FlatLossGuard(baseline=1.0, sample_x=sample["x"], target_mean=0.0, target_std=1.0, doctor_cmd="",
                          checkpoint_path=os.path.join(data, "..", "last_good.npz"), writer=False,
                          steps_per_epoch=STEPS, check_every=1 if per_step else 32)
    if per_step:
        guard._supports_tf_logs = False
    return [guard, tf.keras.callbacks.EarlyStopping(monitor="loss", patience=100), tf.keras.callbacks.History()]


def main() -> int:
    import tensorflow as tf

    import training  # noqa: F401
    from training.config import ModelConfig
    from training.data import batched, load_manifest, read_windows
    from training.model import build_model

    work = tempfile.mkdtemp(prefix="seqscale-trainbench-")
    data = build_data(work)
    m = load_manifest(data)

    def model():
        mdl = build_model(m, ModelConfig(), seed=0)
        mdl.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="mse")
        return mdl

    ds = batched(read_windows(m, data, "train", shuffle=True, seed=0), BATCH, repeat=True)
    # interleaved repeats, median of each: the first fit of a process is slower, and the machine is shared
    runs: dict[str, list[float]] = {"plain": [], "callbacks": [], "per_step": []}
    for _ in range(REPEATS):
        runs["plain"].append(fit_rate(model(), ds, STEPS))
        runs["callbacks"].append(fit_rate(model(), ds, STEPS, callbacks=callbacks(m, data)))
        runs["per_step"].append(fit_rate(model(), ds, STEPS, callbacks=callbacks(m, data, per_step=True)))
    trainer_rate, guarded_rate, per_step_rate = (float(np.median(runs[k])) for k in ("plain", "callbacks", "per_step"))

    windows = list(read_windows(m, data, "train", shuffle=False).batch(4096).as_numpy_iterator())
    x = np.concatenate([w["x"] for w in windows])
    y = np.concatenate([w["y"] for w in windows])
    mdl = model()
    mdl.fit(x[: 10 * BATCH], y[: 10 * BATCH], batch_size=BATCH, epochs=1, verbose=0)
    n = STEPS * BATCH
    start = time.perf_counter()
    mdl.fit(x[:n], y[:n], batch_size=BATCH, epochs=1, shuffle=True, verbose=0)
    numpy_rate = n / (time.perf_counter() - start)

    reader = read_windows(m, data, "train", shuffle=True, seed=0).repeat().batch(BATCH).prefetch(tf.data.AUTOTUNE)
    it = iter(reader)
    next(it)
    start, count = time.perf_counter(), 0
    while count < 200_000:
        count += int(next(it)["x"].shape[0])
    read_rate = count / (time.perf_counter() - start)

    job = os.path.join(work, "two")
    proc = subprocess.run(
        [sys.executable, "-m", "training.launch", "--workers", "2", "--timeout", "900", "--",
         "--data", data, "--job-dir", job, "--epochs", "3", "--max-steps-per-epoch", str(STEPS),
         "--global-batch-size", str(BATCH), "--no-evaluate", "--patience", "0", "--members", "1"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if proc.returncode:
        print(proc.stdout[-3000:])
        raise SystemExit("2-worker run failed")
    with open(os.path.join(job, "history.json")) as f:
        hist = json.load(f)["epochs"]
    two_rate = float(np.mean([STEPS * BATCH / e["train_seconds"] for e in hist[1:]]))

    print(f"model: LSTM 128,64; L=24, 7 features; batch {BATCH}; {STEPS} steps; {os.cpu_count()} cores")
    print(f"trainer (tf.data from shards)  {trainer_rate:>10,.0f} samples/s  {trainer_rate / numpy_rate:.2f}x numpy")
    print(f"plain Keras fit on numpy       {numpy_rate:>10,.0f} samples/s  1.00x")
    print(f"  + the trainer's callbacks    {guarded_rate:>10,.0f} samples/s  {guarded_rate / trainer_rate:.2f}x without")
    print(f"  + a guard reading every step {per_step_rate:>10,.0f} samples/s  {per_step_rate / trainer_rate:.2f}x without"
          " (the guard before it read every 32 steps)")
    print(f"tf.data read alone             {read_rate:>10,.0f} windows/s  {read_rate / trainer_rate:.1f}x the model's rate")
    print(f"2 workers over loopback        {two_rate:>10,.0f} samples/s  {two_rate / trainer_rate:.2f}x one process")
    shutil.rmtree(work, ignore_errors=True)
    ok = trainer_rate >= 0.9 * numpy_rate and read_rate >= 5 * trainer_rate and guarded_rate >= 0.95 * trainer_rate
    print(f"targets (trainer >= 0.9x numpy, read >= 5x model, callbacks >= 0.95x without): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
