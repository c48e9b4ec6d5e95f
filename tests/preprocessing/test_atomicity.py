"""Killing the Beam job at random points never leaves a dataset the trainer accepts half-done;
a rerun with --overwrite then succeeds and cleans up."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

import training  # noqa: F401
from contract.manifest import ManifestError
from tests.helpers import job_args, multi_series, write_files
from training.data import load_manifest, verify_shards

pytestmark = pytest.mark.slow


def test_killed_runs_leave_nothing_acceptable_and_overwrite_recovers(tmp_path):
    df = multi_series()
    import pandas as pd

    big = pd.concat([df.assign(series=df["series"] + f"-{i}") for i in range(6)], ignore_index=True)
    pattern = write_files(big, tmp_path / "in", 4, "parquet")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "preprocessing", *job_args(pattern, out, "--overwrite", "--chunk-rows", "300")]
    start = time.time()
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    full = time.time() - start
    previous = load_manifest(str(out))
    rng = random.Random(7)

    def killed_run(target, latest=full * 0.95):
        run = [sys.executable, "-m", "preprocessing",
               *job_args(pattern, target, "--overwrite", "--chunk-rows", "300", "--seed", str(rng.randint(0, 99)))]
        proc = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.3, max(latest, 0.4)))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        try:
            m = load_manifest(str(target))
        except ManifestError:
            return "no dataset"
        verify_shards(m, str(target), hashes=True)  # a manifest only ever describes complete shards
        return "old dataset" if m == previous else "new dataset"

    fresh = [killed_run(tmp_path / f"fresh{i}") for i in range(3)]  # killed into an empty directory
    # `full` was timed once; on a loaded machine a later run can be faster and finish before
    # every kill. Then kill earlier (up to 3 more runs) until one lands mid-run.
    latest = full * 0.95
    while "no dataset" not in fresh and len(fresh) < 6:
        latest /= 2
        fresh.append(killed_run(tmp_path / f"fresh{len(fresh)}", latest))
    assert set(fresh) <= {"no dataset", "new dataset"} and "no dataset" in fresh, fresh
    replaced = [killed_run(out) for _ in range(3)]  # killed while replacing a dataset with --overwrite
    assert set(replaced) <= {"old dataset", "new dataset", "no dataset"}, replaced
    refused = subprocess.run([sys.executable, "-m", "preprocessing", *job_args(pattern, out)],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    m = load_manifest(str(out))
    verify_shards(m, str(out), hashes=True)
    names = sorted(os.listdir(out))
    assert names == sorted([s.file for sp in m.shards.values() for s in sp] + ["metadata.json"])
