"""seqscale-ensemble: N trained runs averaged into one export and eval.json (numpy reference)."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.training.test_train import QUIET, run_single, trainer
from training.data import load_manifest, read_windows

pytestmark = pytest.mark.slow
# what TensorFlow 2.21 prints on start-up on a machine without a GPU (oneDNN, cudart stub, cuInit)
STARTUP_LINES = re.compile(r"^[IWE]0000 |absl::InitializeLog|cuInit", re.M)


def test_ensemble_export_and_report_average_the_members(dataset, tmp_path):
    from training.export import load_predictor

    members = []
    for seed in (0, 1):
        job = tmp_path / f"s{seed}"
        run_single(trainer(dataset, job, "--epochs", "2", "--units", "16,8", "--seed", str(seed)))
        members.append(str(job))
    out = tmp_path / "ens"
    unset = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    proc = subprocess.run([sys.executable, "-m", "training.ensemble", "--data", str(dataset), "--members",
                           ",".join(members), "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env=unset)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not STARTUP_LINES.search(proc.stderr), proc.stderr[-3000:]  # TensorFlow's C++ start-up lines
    load = subprocess.run([sys.executable, "-c", "from training.export import load_predictor; "
                           f"load_predictor({str(out / 'export')!r})"], capture_output=True, text=True, timeout=300,
                          env=unset)
    assert load.returncode == 0 and not STARTUP_LINES.search(load.stderr), load.stderr[-3000:]
    m = load_manifest(str(dataset))
    w = [r for r in read_windows(m, str(dataset), "test", shuffle=False, with_ids=True).batch(100_000).as_numpy_iterator()][0]
    fc = np.array([m.column(c).center for c in m.features], np.float32)
    fs = np.array([m.column(c).scale for c in m.features], np.float32)
    raw = w["x"] * fs + fc
    each = [load_predictor(os.path.join(d, "export"))(raw)[:, 0] for d in members]
    ens = load_predictor(str(out / "export"))(raw)[:, 0]
    assert not np.allclose(each[0], each[1], atol=1e-3)  # the seeds gave different members
    np.testing.assert_allclose(ens, (each[0] + each[1]) / 2, rtol=1e-4, atol=1e-4)
    y = w["y"].reshape(len(w["y"]), -1)[:, 0] * m.column("y").scale + m.column("y").center
    report = json.loads((out / "eval.json").read_text())
    np.testing.assert_allclose(report["model"]["original"]["rmse"], np.sqrt(np.mean((ens - y) ** 2)), rtol=1e-4)
    assert [r["job_dir"] for r in report["members"]] == members
    for r, p in zip(report["members"], each, strict=True):
        np.testing.assert_allclose(r["rmse"], np.sqrt(np.mean((p - y) ** 2)), rtol=1e-4)
    assert "members' RMSE" in proc.stdout
    refused = subprocess.run([sys.executable, "-m", "training.ensemble", "--data", str(dataset), "--members",
                              ",".join(members), "--out", str(tmp_path / "cal"), "--calibrate"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "--calibrate adjusts quantile levels; the members forecast none" in refused.stderr
    assert not (tmp_path / "cal" / "export").exists()

    # seqscale-predict's score mode on the ensemble's export reproduces its eval.json
    from prediction.cli import run as predict

    scored = predict(["--export", str(out / "export"), "--input", str(dataset.parent / "raw.parquet"),
                      "--output", str(tmp_path / "scored"), "--split", "test"])["report"]
    assert scored["windows"] == report["windows"]
    for k in ("rmse", "mae", "mase"):
        np.testing.assert_allclose(scored["model"]["original"][k], report["model"]["original"][k], rtol=1e-4)

    # a member trained on another dataset (its export's manifest lists other shards) is refused by name
    other = tmp_path / "other"
    shutil.copytree(members[1], other)
    path = other / "export" / "seqscale_manifest.json"
    theirs = json.loads(path.read_text())
    theirs["shards"]["train"][0]["sha256"] = "0" * 64
    path.write_text(json.dumps(theirs))
    proc = subprocess.run([sys.executable, "-m", "training.ensemble", "--data", str(dataset), "--members",
                           f"{members[0]},{other}", "--out", str(tmp_path / "ens2")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **QUIET})
    assert proc.returncode != 0 and f"{other} was trained on another dataset than --data" in proc.stderr
    assert not (tmp_path / "ens2").exists()


def test_needs_two_members(dataset, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "training.ensemble", "--data", str(dataset), "--members",
                           str(tmp_path / "a"), "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **QUIET})
    assert proc.returncode != 0 and "at least two job dirs" in proc.stderr
