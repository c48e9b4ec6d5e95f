"""The doctor: each check passes on a healthy setup and fails on a broken one; a broken run
is flagged by the doctor and stopped by the flat-loss guard, and seqscale's defaults cure it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import training  # noqa: F401
from preprocessing.cli import run as preprocess
from tests.training.conftest import sines
from training import doctor
from training.config import build_parser, resolve
from training.data import load_manifest, sample_windows

PY = sys.executable


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


def test_scaling(healthy, offsets):
    _, m, s = healthy
    assert doctor.check_scaling(m, s).status == "PASS"
    bad = load_manifest(str(offsets / "bad"))
    v = doctor.check_scaling(bad, sample_windows(bad, str(offsets / "bad"), n=512, with_ids=True))
    assert v.status == "FAIL" and "unscaled columns with large values: x2, y" in v.evidence
    assert "dominates" in v.evidence


def test_windows_against_raw_rows(healthy, tmp_path):
    data, m, s = healthy
    raw = str(data.parent / "raw.parquet")
    v = doctor.check_windows(m, s, [raw])
    assert v.status == "PASS" and "0 differ, 0 not found" in v.evidence
    import pandas as pd

    shifted = pd.read_parquet(raw)
    shifted["y"] = shifted.groupby("sid")["y"].shift(1).bfill()  # targets one step late: a wrong horizon
    shifted.to_parquet(tmp_path / "shifted.parquet", index=False)
    v = doctor.check_windows(m, s, [str(tmp_path / "shifted.parquet")])
    assert v.status == "FAIL" and "do not equal the raw rows" in v.evidence
    assert doctor.check_windows(m, s, None).status == "WARN"  # nothing to compare with


def test_capacity(healthy):
    data, m, s = healthy
    assert doctor.check_capacity(m, config(data), s).status == "PASS"
    v = doctor.check_capacity(m, config(data, "--units", "1"), s, steps=60)
    assert v.status == "FAIL" and "cannot even memorize one batch" in v.fix


def test_head(healthy):
    data, m, s = healthy
    assert doctor.check_head(m, config(data), s).status == "PASS"
    v = doctor.check_head(m, config(data, "--head-activation", "sigmoid"), s)
    assert v.status == "FAIL" and "sigmoid output on a regression target is refused" in v.evidence


def test_learning_rate(healthy, tmp_path):
    data, m, s = healthy
    cfg = config(data)
    ok = doctor.check_lr(m, cfg, s, peak_lr=1e-3, global_batch=64, plot_path=str(tmp_path / "lr.png"))
    assert ok.status == "PASS", ok.evidence
    assert (tmp_path / "lr.png").stat().st_size > 1000
    bad = doctor.check_lr(m, cfg, s, peak_lr=5.0, global_batch=64)
    assert bad.status == "FAIL" and "far too high" in bad.evidence


def test_batch_size(healthy):
    data, m, s = healthy
    assert doctor.check_batch(m, config(data), s, 64).status in ("PASS", "WARN")
    v = doctor.check_batch(m, config(data), s, m.windows("train") // 4)
    assert v.status == "FAIL" and "4 steps per epoch" in v.evidence


def test_gradient_noise_scale_grows_with_label_noise(healthy):
    data, m, s = healthy
    cfg = config(data)
    clean = doctor.gradient_noise_scale(m, cfg, s)
    noisy = dict(s, y=s["y"] + np.random.default_rng(0).normal(scale=5.0, size=s["y"].shape).astype(np.float32))
    assert doctor.gradient_noise_scale(m, cfg, noisy) > 2 * clean


@pytest.mark.slow
def test_broken_run_is_diagnosed_and_stopped_and_the_defaults_cure_it(offsets, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    bad = ["--data", str(offsets / "bad"), "--units", "16", "--base-lr", "0.5"]
    doc = subprocess.run([PY, "-m", "training.doctor", *bad, "--out", str(tmp_path / "doc"), "--only",
                          "scaling,head,lr"], capture_output=True, text=True, timeout=300, env=env)
    assert doc.returncode == 1, doc.stdout + doc.stderr
    # the offsets are what breaks this run (an unscaled target near 20000 even makes the LR sweep
    # favour huge steps, so the lr check alone is confounded here; test_learning_rate covers it)
    assert "[FAIL] scaling" in doc.stdout and "[PASS] head" in doc.stdout
    verdicts = json.loads((tmp_path / "doc" / "doctor.json").read_text())
    assert [v["check"] for v in verdicts] == ["scaling", "head", "lr"]

    train = subprocess.run([PY, "-m", "training", *bad, "--job-dir", str(tmp_path / "job"), "--epochs", "20"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert train.returncode == 3, train.stdout[-2000:] + train.stderr[-2000:]
    assert "the model is not learning" in train.stderr or "training loss became" in train.stderr
    assert "Diagnose with: seqscale-doctor --data" in train.stderr
    assert len(json.loads((tmp_path / "job" / "history.json").read_text())["epochs"]) < 20

    cured = subprocess.run([PY, "-m", "training", "--data", str(offsets / "good"), "--job-dir", str(tmp_path / "ok"),
                            "--units", "32", "--epochs", "8", "--global-batch-size", "64", "--base-lr", "3e-3"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert cured.returncode == 0, cured.stderr[-2000:]
    best = min(e["val_loss"] for e in json.loads((tmp_path / "ok" / "history.json").read_text())["epochs"])
    assert best < 0.1  # predicting the mean scores about 1 on standardized targets


@pytest.mark.slow
def test_sigmoid_head_is_flagged_by_the_doctor_and_refused_by_the_trainer(dataset, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    args = ["--data", str(dataset), "--head-activation", "sigmoid"]
    doc = subprocess.run([PY, "-m", "training.doctor", *args, "--out", str(tmp_path / "doc"), "--only", "head,lr"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert doc.returncode == 1 and "[FAIL] head" in doc.stdout and "skipped: the head does not fit" in doc.stdout
    train = subprocess.run([PY, "-m", "training", *args, "--job-dir", str(tmp_path / "job")],
                           capture_output=True, text=True, timeout=300, env=env)
    assert train.returncode == 2 and "sigmoid output on a regression target is refused" in train.stderr


def test_flat_loss_guard_unit(tmp_path):
    import tensorflow as tf

    from training.callbacks import FlatLossGuard

    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
    guard = FlatLossGuard(baseline=1.0, sample_x=np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32), target_std=1.0, doctor_cmd="doc",
                          checkpoint_path=str(tmp_path / "ck" / "last_good.npz"), writer=True, patience=2)
    guard.set_model(model)
    guard.on_epoch_end(0, {"loss": 3.0})
    guard.on_epoch_end(1, {"loss": 2.0})  # above the baseline but falling fast: not flat
    assert guard.reason is None and guard.flat_epochs == 0
    guard.on_epoch_end(2, {"loss": 1.98})
    assert guard.reason is None
    guard.on_epoch_end(3, {"loss": 1.97})
    assert guard.reason and "not learning" in guard.reason and model.stop_training
    nan_guard = FlatLossGuard(baseline=1.0, sample_x=np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32), target_std=1.0, doctor_cmd="doc",
                              checkpoint_path=str(tmp_path / "ck" / "last_good.npz"), writer=True)
    nan_guard.set_model(model)
    nan_guard.on_epoch_end(0, {"loss": 0.5})
    good = [w.copy() for w in model.get_weights()]
    model.layers[0].kernel.assign(tf.fill([3, 1], np.nan))
    nan_guard.on_train_batch_end(7, {"loss": float("nan")})
    assert "became nan at step 8" in nan_guard.reason and "last good epoch" in nan_guard.reason
    np.testing.assert_array_equal(model.get_weights()[0], good[0])
    assert (tmp_path / "ck" / "last_good.npz").exists()
