"""Concurrency of the job dir under real training: a soak of many short 2-worker epochs with
early-stopping and plateau state written every epoch, and a chief killed mid-write.

The soak runs SEQSCALE_SOAK_RUNS runs (default 1 in make test; `make soak` runs 5) of
SEQSCALE_SOAK_EPOCHS epochs (default 150).
"""

import json
import os
import subprocess
import sys

import pytest

from tests.training.test_train import QUIET, history, trainer

pytestmark = pytest.mark.slow
PY = sys.executable
RUNS = int(os.environ.get("SEQSCALE_SOAK_RUNS", "1"))
EPOCHS = int(os.environ.get("SEQSCALE_SOAK_EPOCHS", "150"))


def launch(args, *, module="training", env=None, timeout=600):
    code = (f"import sys; from training.launch import launch; "
            f"sys.exit(launch(2, {args!r}, module={module!r}, timeout={timeout - 30}))")
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **QUIET, **(env or {})})
    return proc.returncode, proc.stdout + proc.stderr


def soak_args(dataset, job, seed):
    # a tiny model and 2 steps per epoch: the epochs are short, so the per-epoch files are
    # rewritten as often as possible; a patience above the epoch count keeps every epoch
    return trainer(dataset, job, "--epochs", str(EPOCHS), "--max-steps-per-epoch", "2", "--units", "4",
                   "--patience", str(EPOCHS + 1), "--decay", "plateau", "--plateau-patience", "2",
                   "--flat-patience", "0", "--no-evaluate", "--seed", str(seed), "--base-lr", "3e-3")


@pytest.mark.parametrize("run", range(RUNS))
def test_soak_many_short_epochs_two_workers_no_crash(dataset, tmp_path, run):
    job = tmp_path / "job"
    code, out = launch(soak_args(dataset, job, seed=run), timeout=900)
    assert code == 0, out[-4000:]
    assert [e["epoch"] for e in history(job)] == list(range(1, EPOCHS + 1))
    assert "Traceback" not in out, out[-4000:]
    assert not [p for p in os.listdir(job) if ".tmp" in p]


def test_chief_killed_between_temp_write_and_rename_resumes(dataset, tmp_path):
    job = tmp_path / "job"
    args = trainer(dataset, job, "--epochs", "6", "--max-steps-per-epoch", "5", "--units", "8", "--patience", "20",
                   "--decay", "plateau", "--flat-patience", "0", "--no-evaluate")
    code, out = launch(args, module="tests.training.crashing_trainer", env={"SEQSCALE_TEST_CRASH_AT": "3"})
    assert code == 137 and "[launch] worker 0 exited with 137" in out, out[-3000:]
    state = job / "backup" / "seqscale_state"
    leftovers = [p for p in os.listdir(state) if p.startswith("early_stopping.json.tmp-")]
    assert leftovers, os.listdir(state)  # the temp copy was written, the rename never happened
    saved = json.loads((state / "early_stopping.json").read_text())  # still the last whole file
    assert sorted(map(int, saved)) == [0, 1]
    done = [e["epoch"] for e in history(job)]
    code, out = launch(args)
    assert code == 0, out[-3000:]
    epochs = [e["epoch"] for e in history(job)]
    assert epochs[-1] == 6 and sorted(set(epochs)) == [1, 2, 3, 4, 5, 6] and len(epochs) - 6 <= 1, epochs
    assert "starting it over" not in out  # early stopping resumed from its saved state
    assert f"Epoch {len(done) + 1}/6" in out or f"Epoch {len(done)}/6" in out


def test_a_corrupt_state_file_on_restart_names_the_file(dataset, tmp_path):
    job = tmp_path / "job"
    args = trainer(dataset, job, "--epochs", "4", "--max-steps-per-epoch", "5", "--units", "8", "--patience", "20",
                   "--flat-patience", "0", "--no-evaluate")
    code, out = launch(args, module="tests.training.crashing_trainer", env={"SEQSCALE_TEST_CRASH_AT": "3"})
    assert code == 137, out[-3000:]
    path = job / "backup" / "seqscale_state" / "early_stopping.json"
    path.write_text('{"0": {"best": 1.0, "wa')  # damaged by hand (or by another tool)
    code, out = launch(args)
    assert code == 1, out[-3000:]
    assert "is not valid JSON" in out and str(path) in out
    assert "[launch] worker" in out and "exited with 1 (seqscale-train: error: worker" in out
