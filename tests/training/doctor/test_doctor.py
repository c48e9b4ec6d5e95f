"""The doctor end to end: a broken run is flagged by the doctor and stopped by the flat-loss
guard, and seqscale's defaults cure it; a refused head is reported, not crashed on."""

import json
import os
import subprocess
import sys

import pytest

import training  # noqa: F401

PY = sys.executable


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

    train = subprocess.run([PY, "-m", "training", *bad, "--job-dir", str(tmp_path / "job"), "--epochs", "20",
                            "--members", "1"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert train.returncode == 3, train.stdout[-2000:] + train.stderr[-2000:]
    # the guard names the cause the curve shows: the target left unscaled near 20000
    assert "Likely cause: the target is not scaled" in train.stderr, train.stderr[-3000:]
    assert "Confirm with: seqscale-doctor --data" in train.stderr and "--only scaling" in train.stderr
    assert len(json.loads((tmp_path / "job" / "history.json").read_text())["epochs"]) < 20

    cured = subprocess.run([PY, "-m", "training", "--data", str(offsets / "good"), "--job-dir", str(tmp_path / "ok"),
                            "--units", "32", "--members", "1", "--epochs", "8", "--global-batch-size", "64", "--base-lr", "3e-3"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert cured.returncode == 0, cured.stderr[-2000:]
    best = min(e["val_loss"] for e in json.loads((tmp_path / "ok" / "history.json").read_text())["epochs"])
    assert best < 0.1  # predicting the mean scores about 1 on standardized targets


@pytest.mark.slow
def test_sigmoid_head_is_flagged_by_the_doctor_and_refused_by_the_trainer(dataset, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    args = ["--data", str(dataset), "--head-activation", "sigmoid"]
    # every check, not a subset: the model checks used to build the refused head and crash
    doc = subprocess.run([PY, "-m", "training.doctor", *args, "--out", str(tmp_path / "doc")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert doc.returncode == 1 and "Traceback" not in doc.stderr, doc.stderr[-3000:]
    verdicts = {v["check"]: v for v in json.loads((tmp_path / "doc" / "doctor.json").read_text())}
    assert list(verdicts) == ["scaling", "windows", "learnability", "head", "capacity", "lr", "batch"]
    assert verdicts["head"]["status"] == "FAIL" and "sigmoid" in verdicts["head"]["evidence"]
    for name in ("capacity", "lr", "batch"):
        assert verdicts[name]["status"] == "WARN" and verdicts[name]["evidence"].startswith(
            "skipped: the configured head was refused"), verdicts[name]
    assert verdicts["scaling"]["status"] == "WARN" and "--scale-by series" in verdicts["scaling"]["fix"]  # y: 0/10/20
    train = subprocess.run([PY, "-m", "training", *args, "--job-dir", str(tmp_path / "job")],
                           capture_output=True, text=True, timeout=300, env=env)
    assert train.returncode == 2 and "sigmoid output on a regression target is refused" in train.stderr


def test_a_check_that_raises_is_its_own_fail_and_the_others_still_run(dataset, tmp_path, monkeypatch):
    from tests.training.conftest import config
    from training.doctor import cli as doctor

    def broken(*_):
        raise OSError("disk full")

    monkeypatch.setattr(doctor, "check_scaling", broken)
    verdicts = doctor.run_checks(config(dataset), raw=None, out_dir=str(tmp_path / "d"), sample_size=256,
                                 only=("scaling", "head"))
    assert [(v.check, v.status) for v in verdicts] == [("scaling", "FAIL"), ("head", "PASS")]
    assert verdicts[0].evidence == "the check itself failed: OSError: disk full"
    saved = json.loads((tmp_path / "d" / "doctor.json").read_text())
    assert [v["check"] for v in saved] == ["scaling", "head"]


def test_doctor_plans_the_lr_for_the_replicas_given(dataset, tmp_path):
    from tests.training.conftest import config
    from training.data import load_manifest
    from training.doctor import run_checks
    from training.lr_plan import default_per_replica_batch

    fixed = config(dataset, "--per-replica-batch-size", "64")
    one = run_checks(fixed, raw=None, out_dir=str(tmp_path / "a"), sample_size=512, only=("batch",))
    four = run_checks(fixed, raw=None, out_dir=str(tmp_path / "b"), sample_size=512, only=("batch",), replicas=4)
    assert "global batch 64:" in one[0].evidence and "global batch 256:" in four[0].evidence
    assert json.loads((tmp_path / "b" / "doctor.json").read_text())[0]["check"] == "batch"
    # the default batch is the trainer's: halved on this small split until an epoch has 50 steps
    m = load_manifest(str(dataset))
    for replicas in (1, 4):
        per = default_per_replica_batch(m.windows("train"), replicas)
        assert per < 64  # the split is small enough for the rule to act
        v = run_checks(config(dataset), raw=None, out_dir=str(tmp_path / f"d{replicas}"), sample_size=512,
                       only=("batch",), replicas=replicas)[0]
        assert f"global batch {per * replicas}: {m.windows('train') // (per * replicas)} steps" in v.evidence
