"""The trainer for real: separate processes, real MultiWorkerMirroredStrategy on 127.0.0.1,
kills and restarts. Every test is bounded by a timeout so a hang fails fast."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.training.conftest import build_dataset

pytestmark = pytest.mark.slow
PY = sys.executable
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def trainer(data, job_dir, *extra):
    """One network (--members 1; the default trains three on these small splits) unless `extra` says."""
    return ["--data", str(data), "--job-dir", str(job_dir), "--members", "1", *extra]


def run_single(args, timeout=300):
    proc = subprocess.run([PY, "-m", "training", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **QUIET})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def run_workers(n, args, timeout=300):
    proc = subprocess.run([PY, "-m", "training.launch", "--workers", str(n), "--timeout", str(timeout - 30), "--",
                           *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **QUIET})
    return proc.returncode, proc.stdout + proc.stderr


def history(job_dir):
    with open(os.path.join(job_dir, "history.json")) as f:
        return json.load(f)["epochs"]


def wait_for_epochs(job_dir, n, proc, timeout=240):
    path = os.path.join(job_dir, "history.json")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            try:
                if len(history(job_dir)) >= n:
                    return
            except (json.JSONDecodeError, KeyError):
                pass
        assert proc.poll() is None, "training ended before it could be interrupted"
        time.sleep(0.05)
    pytest.fail(f"no {n} epochs within {timeout} s")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def test_learns_and_exports_a_raw_input_model(dataset, tmp_path):
    """Validation loss ends far below predict-the-mean; the export undoes the scaling itself."""
    import tensorflow as tf

    from training.data import eval_batches, load_manifest, steps_per_epoch
    from training.export import load_predictor

    job = tmp_path / "job"
    run_single(trainer(dataset, job, "--epochs", "8", "--units", "32,16", "--global-batch-size", "64",
                       "--base-lr", "3e-3", "--patience", "3"))
    m = load_manifest(str(dataset))
    val = eval_batches(m, str(dataset), "val", 64, steps=steps_per_epoch(m, 64).val)
    ys = np.concatenate([y.numpy()[w.numpy() > 0] for _, y, w in val])
    baseline = float(np.mean(ys**2))  # predicting the training mean = 0 in scaled units
    best = min(e["val_loss"] for e in history(job))
    assert best < 0.1 * baseline, (best, baseline)
    for name in ("loss.png", "history.json", "eval.json", "config.json", "export/saved_model.pb"):
        assert (job / name).exists(), name
    report = json.loads((job / "eval.json").read_text())
    assert report["model"]["original"]["rmse"] < report["baselines"]["train_mean"]["original"]["rmse"]
    # config.json says whether the linear skip ran (the flag's default is None: by the data)
    ran = json.loads((job / "config.json").read_text())["model"]["linear_skip"]
    assert ran is True and "y" in m.features

    # export: raw windows in, original units out == manual scaling around the trained network
    loaded = tf.saved_model.load(str(job / "export"))
    assert any("skip_dense" in v.name for v in loaded.model.variables) is ran
    x_scaled, _, _ = next(iter(val))
    fc = np.array([m.column(c).center for c in m.features], np.float32)
    fs = np.array([m.column(c).scale for c in m.features], np.float32)
    y_col = m.column("y")
    raw = x_scaled.numpy() * fs + fc
    manual = loaded.model(tf.constant(x_scaled), training=False).numpy() * y_col.scale + y_col.center
    np.testing.assert_allclose(load_predictor(str(job / "export"))(raw), manual, rtol=1e-4, atol=1e-3)


def test_a_seed_reproduces_a_run_on_cpu(dataset, tmp_path):
    """Two runs with the same flags and seed, in separate processes, give the same losses every epoch
    and the same exported forecasts to the last bit; another seed does not. BENCHMARKS.md compares
    runs across code versions seed for seed on this (shuffle, dropout and initializers all seeded)."""
    import tensorflow as tf

    from training.data import load_manifest, read_windows

    flags = ("--epochs", "3", "--max-steps-per-epoch", "20", "--units", "8", "--dropout", "0.1", "--no-evaluate",
             "--patience", "0")
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        run_single(trainer(dataset, tmp_path / name, "--seed", seed, *flags))
    a, b, c = (history(tmp_path / n) for n in "abc")
    assert [(e["loss"], e["val_loss"]) for e in a] == [(e["loss"], e["val_loss"]) for e in b]
    assert a[-1]["val_loss"] != c[-1]["val_loss"]
    m = load_manifest(str(dataset))
    x = next(read_windows(m, str(dataset), "val", shuffle=False).batch(256).as_numpy_iterator())["x"]
    fa, fb = (tf.saved_model.load(str(tmp_path / n / "export")).model(x, training=False).numpy() for n in "ab")
    np.testing.assert_array_equal(fa, fb)


@pytest.mark.parametrize("workers", [1, 2])
def test_val_loss_is_the_mean_over_every_validation_window(dataset, tmp_path, workers):
    """Not over whole batches only: the padded last batch weighs each real window exactly once."""
    import tensorflow as tf

    from training.data import load_manifest, read_windows

    job = tmp_path / "job"
    args = trainer(dataset, job, "--epochs", "1", "--max-steps-per-epoch", "10", "--global-batch-size", "64",
                   "--units", "8", "--no-evaluate", "--patience", "0")
    if workers == 1:
        run_single(args)
    else:
        code, out = run_workers(2, args)
        assert code == 0, out[-3000:]
    m = load_manifest(str(dataset))
    assert m.windows("val") % 64  # a partial last batch, which used to be dropped
    net = tf.saved_model.load(str(job / "export")).model
    sq = [np.mean((net(w["x"], training=False).numpy() - w["y"]) ** 2, axis=-1)
          for w in read_windows(m, str(dataset), "val", shuffle=False).batch(256).as_numpy_iterator()]
    assert history(job)[0]["val_loss"] == pytest.approx(float(np.mean(np.concatenate(sq))), rel=1e-4)


def test_two_workers_match_one_worker_with_the_same_global_batch(dataset, tmp_path):
    common = ["--epochs", "3", "--max-steps-per-epoch", "25", "--global-batch-size", "64", "--dropout", "0",
              "--units", "16", "--shard-policy", "data", "--seed", "7", "--no-evaluate"]
    run_single(trainer(dataset, tmp_path / "one", *common))
    code, out = run_workers(2, trainer(dataset, tmp_path / "two", *common))
    assert code == 0, out[-4000:]
    a, b = history(tmp_path / "one"), history(tmp_path / "two")
    assert len(a) == len(b) == 3
    for ea, eb in zip(a, b, strict=True):
        assert eb["loss"] == pytest.approx(ea["loss"], rel=2e-3)
        assert eb["val_loss"] == pytest.approx(ea["val_loss"], rel=2e-3)
        assert eb["lr"] == pytest.approx(ea["lr"], rel=1e-6)  # same global batch, same LR
    assert "2 replicas in sync" in out and "64 global" in out
    assert not (tmp_path / "two" / "scratch").exists()  # worker 1's scratch removed


def test_early_stopping_is_synchronized_across_workers(dataset, tmp_path):
    # min-delta 100 never counts as an improvement: both workers must stop after epoch 1 + patience
    code, out = run_workers(2, trainer(dataset, tmp_path / "job", "--epochs", "30", "--max-steps-per-epoch", "10",
                                       "--patience", "2", "--min-delta", "100", "--units", "8", "--no-evaluate"),
                            timeout=240)
    assert code == 0, out[-4000:]
    assert out.count("[w0] Epoch 3: early stopping") == 1 and out.count("[w1] Epoch 3: early stopping") == 1
    assert "[w0] Epoch 4/30" not in out and "[w1] Epoch 4/30" not in out
    assert len(history(tmp_path / "job")) == 3


def test_kill_one_worker_restart_all_resumes(dataset, tmp_path):
    job = tmp_path / "job"
    args = trainer(dataset, job, "--epochs", "5", "--max-steps-per-epoch", "40", "--units", "16", "--patience", "0",
                   "--no-evaluate")
    launcher = subprocess.Popen([PY, "-m", "training.launch", "--workers", "2", "--timeout", "200", "--", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, **QUIET})
    try:
        wait_for_epochs(job, 2, launcher)
        workers = children(launcher.pid)
        assert len(workers) == 2
        os.kill(workers[1], signal.SIGKILL)  # a lost pod
        out, _ = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0 and "worker 1 exited with -9" in out
    done_before = [e["epoch"] for e in history(job)]
    assert 2 <= len(done_before) < 5
    code, out = run_workers(2, args, timeout=240)  # the gang restart
    assert code == 0, out[-4000:]
    epochs = [e["epoch"] for e in history(job)]
    assert epochs[-1] == 5 and sorted(set(epochs)) == [1, 2, 3, 4, 5]
    assert len(epochs) - 5 <= 1  # at most the interrupted epoch runs twice
    assert f"Epoch {done_before[-1] + 1}/5" in out and "Epoch 1/5" not in out  # resumed, not restarted


def test_early_stopping_state_survives_a_restart(tmp_path):
    """Interrupted after its best epoch, a run stops at the same epoch with the same weights."""
    import tensorflow as tf

    data = build_dataset(tmp_path / "ds", shards="2")
    # never improves after epoch 1 (min-delta 100): uninterrupted, it stops after epoch 4 with epoch-1 weights
    common = ["--epochs", "12", "--max-steps-per-epoch", "150", "--global-batch-size", "32", "--units", "16",
              "--dropout", "0", "--no-shuffle", "--patience", "3", "--min-delta", "100", "--no-evaluate"]
    run_single(trainer(data, tmp_path / "a", *common))
    assert len(history(tmp_path / "a")) == 4

    job = tmp_path / "b"
    proc = subprocess.Popen([PY, "-m", "training", *trainer(data, job, *common)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, **QUIET})
    try:
        wait_for_epochs(job, 2, proc)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(history(job)) in (2, 3)  # killed after the best epoch, before the stop
    run_single(trainer(data, job, *common))
    epochs = [e["epoch"] for e in history(job)]
    assert epochs[-1] == 4  # the same stopping epoch (a fresh EarlyStopping would run to epoch >= 5)

    x = tf.random.stateless_normal([8, 16, 3], seed=[1, 2])
    a = tf.saved_model.load(str(tmp_path / "a" / "export")).signatures["serving_default"](x=x)["predictions"]
    b = tf.saved_model.load(str(job / "export")).signatures["serving_default"](x=x)["predictions"]
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)  # the same (epoch-1) weights


def test_binary_task_trains_and_evaluates(tmp_path):
    from preprocessing.cli import run as preprocess
    from tests.training.conftest import sines

    df = sines()
    df["up"] = (df.groupby("sid")["y"].diff().fillna(0) > 0).astype(int)
    df.to_parquet(tmp_path / "raw.parquet", index=False)
    preprocess(["--input", str(tmp_path / "raw.parquet"), "--output", str(tmp_path / "data"), "--time-column", "t",
                "--series-column", "sid", "--features", "x1,x2,y", "--targets", "up", "--task", "binary",
                "--look-back", "16", "--train-shards", "4", "--eval-shards", "2"])
    run_single(trainer(tmp_path / "data", tmp_path / "job", "--epochs", "4", "--units", "16",
                       "--global-batch-size", "64"))
    report = json.loads((tmp_path / "job" / "eval.json").read_text())
    assert report["model"]["accuracy"] > report["baselines"]["majority_class"]["accuracy"]


def test_start_up_is_quiet_and_one_line_per_epoch_in_a_pipe(dataset, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([PY, "-m", "training", *trainer(dataset, tmp_path / "job", "--epochs", "2",
                                                          "--max-steps-per-epoch", "3", "--units", "4", "--no-evaluate")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "oneDNN custom operations" not in out and "cudart_stub" not in out  # TensorFlow's C++ start-up lines
    assert out.count("3/3 - ") == 2 and "\x08" not in out  # --verbose auto in a pipe: one line per epoch
    # no batch given on this small split: the default is lowered, said once, and saved with the plan
    from training.data import load_manifest
    from training.lr_plan import default_per_replica_batch

    windows = load_manifest(str(dataset)).windows("train")
    per = default_per_replica_batch(windows, 1)
    assert per < 64 and out.count(f"default batch lowered from 64 to {per} per replica: the {windows} train") == 1
    assert json.loads((tmp_path / "job" / "config.json").read_text())["lr_plan"]["per_replica_batch"] == per


def test_without_matplotlib_the_run_still_exports_and_evaluates(dataset, tmp_path):
    """An image built without the plotting library loses loss.png, never the export or eval.json."""
    job = tmp_path / "job"
    code = "import sys; sys.modules['matplotlib'] = None; from training.__main__ import main; sys.exit(main())"
    proc = subprocess.run([PY, "-c", code, *trainer(dataset, job, "--epochs", "2", "--max-steps-per-epoch", "5",
                                                     "--units", "8")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **QUIET})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (job / "export" / "saved_model.pb").exists() and (job / "eval.json").exists()
    assert not (job / "loss.png").exists()
    assert "loss.png not written: matplotlib is not installed (pip install 'seqscale[train]')" in proc.stderr


def test_steps_per_execution_runs_on_two_workers(dataset, tmp_path):
    """--steps-per-execution (Keras' steps_per_execution) under MultiWorkerMirroredStrategy: every epoch
    takes its steps, the guard's batch hook still sees the epoch's last step, config.json records it."""
    job = tmp_path / "job"
    code, out = run_workers(2, trainer(dataset, job, "--epochs", "2", "--max-steps-per-epoch", "10", "--units", "8",
                                       "--steps-per-execution", "5", "--no-evaluate", "--patience", "0"))
    assert code == 0, out[-3000:]
    assert len(history(job)) == 2
    with open(job / "config.json") as f:
        assert json.load(f)["train"]["steps_per_execution"] == 5
