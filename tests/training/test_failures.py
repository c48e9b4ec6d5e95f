"""Failures around training fail fast and clearly: unreachable peers, a port in use, an
unusable job dir, a worker lost during the first epoch."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.training.test_train import QUIET, children, history, run_workers, trainer

pytestmark = pytest.mark.slow
PY = sys.executable


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker",
                                                                                           "index": index}})


def test_a_worker_whose_peer_never_comes_fails_in_bounded_time(dataset, tmp_path):
    ports = [free_port(), free_port()]
    start = time.time()
    proc = subprocess.run([PY, "-m", "training", *trainer(dataset, tmp_path / "job", "--startup-timeout", "10")],
                          env={**os.environ, **QUIET, "TF_CONFIG": tf_config(ports, 0)}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and time.time() - start < 60
    assert f"worker 0 (127.0.0.1:{ports[0]}) could not reach its peers (127.0.0.1:{ports[1]}) within 10 s" in proc.stderr


def test_a_port_in_use_is_a_clear_error(dataset, tmp_path):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([PY, "-m", "training", *trainer(dataset, tmp_path / "job", "--startup-timeout", "30")],
                              env={**os.environ, **QUIET, "TF_CONFIG": tf_config([port, free_port()], 0)},
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"worker 0 cannot listen on 127.0.0.1:{port}" in proc.stderr and "port is in use" in proc.stderr


def test_unwritable_or_full_job_dir_is_refused_before_training(dataset, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = subprocess.run([PY, "-m", "training", *trainer(dataset, blocker / "job")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **QUIET})
    assert proc.returncode == 2 and f"cannot write to the job dir {blocker / 'job'}" in proc.stderr
    assert "Epoch 1" not in proc.stdout + proc.stderr
    proc = subprocess.run([PY, "-m", "training", *trainer(dataset, tmp_path / "job", "--min-free-disk-mb",
                                                          str(10**9))], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **QUIET})
    assert proc.returncode == 2 and "MB free, less than the 1000000000 MB needed" in proc.stderr


def test_worker_lost_during_the_first_epoch_restart_finishes_all_epochs(dataset, tmp_path):
    job = tmp_path / "job"
    args = trainer(dataset, job, "--epochs", "3", "--max-steps-per-epoch", "40", "--units", "16", "--patience", "0",
                   "--no-evaluate", "--seed", "3")
    launcher = subprocess.Popen([PY, "-m", "training.launch", "--workers", "2", "--timeout", "200", "--", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, **QUIET})
    try:
        deadline = time.time() + 120
        out = ""
        while time.time() < deadline and "Epoch 1/3" not in out:  # both workers in their first epoch
            line = launcher.stdout.readline()
            out += line
        time.sleep(0.5)
        os.kill(children(launcher.pid)[0], signal.SIGKILL)  # the chief this time
        launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0
    assert not (job / "history.json").exists() or len(history(job)) == 0  # no epoch finished
    code, out = run_workers(2, args, timeout=240)
    assert code == 0, out[-3000:]
    assert [e["epoch"] for e in history(job)] == [1, 2, 3]
    # an uninterrupted run of the same configuration ends at a comparable loss
    code, _ = run_workers(2, trainer(dataset, tmp_path / "ref", *args[4:]), timeout=240)
    assert code == 0
    assert history(job)[-1]["loss"] == pytest.approx(history(tmp_path / "ref")[-1]["loss"], rel=0.25)
