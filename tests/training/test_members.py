"""--members N: N networks (seeds seed..seed+N-1) trained in one run, exported as their mean."""

import json
import os

import numpy as np
import pytest

from tests.training.test_train import run_single, run_workers, trainer
from training.data import load_manifest, read_windows

pytestmark = pytest.mark.slow


def raw_test_windows(dataset):
    m = load_manifest(str(dataset))
    w = next(read_windows(m, str(dataset), "test", shuffle=False, with_ids=True).batch(100_000).as_numpy_iterator())
    fc = np.array([m.column(c).center for c in m.features], np.float32)
    fs = np.array([m.column(c).scale for c in m.features], np.float32)
    y = w["y"].reshape(len(w["y"]), -1)[:, 0] * m.column("y").scale + m.column("y").center
    return w["x"] * fs + fc, y


def test_members_train_in_one_run_and_the_export_is_their_mean(dataset, tmp_path):
    from training.export import load_predictor

    job = tmp_path / "job"
    args = trainer(dataset, job, "--epochs", "2", "--units", "16,8", "--seed", "3", "--members", "2")
    out = run_single(args, timeout=600)
    dirs = [job / "member-0", job / "member-1"]
    seeds = [json.loads((d / "config.json").read_text())["train"]["seed"] for d in dirs]
    assert seeds == [3, 4]
    for d in dirs:
        assert (d / "export" / "saved_model.pb").exists() and (d / "member.json").exists()
        assert len(json.loads((d / "history.json").read_text())["epochs"]) == 2
    raw, y = raw_test_windows(dataset)
    each = [load_predictor(str(d / "export"))(raw)[:, 0] for d in dirs]
    ens = load_predictor(str(job / "export"))(raw)[:, 0]
    assert not np.allclose(each[0], each[1], atol=1e-3)  # two seeds, two networks
    np.testing.assert_allclose(ens, (each[0] + each[1]) / 2, rtol=1e-4, atol=1e-4)
    report = json.loads((job / "eval.json").read_text())
    np.testing.assert_allclose(report["model"]["original"]["rmse"], np.sqrt(np.mean((ens - y) ** 2)), rtol=1e-4)
    for r, p in zip(report["members"], each, strict=True):
        np.testing.assert_allclose(r["rmse"], np.sqrt(np.mean((p - y) ** 2)), rtol=1e-4)
    config = json.loads((job / "config.json").read_text())
    assert config["train"]["members"] == 2 and [c["train"]["seed"] for c in config["members"]] == [3, 4]
    assert "members' RMSE" in out
    # the validation loss of each member (its best epoch's, as the trainer logged it) and of their mean
    import tensorflow as tf

    from training.evaluate import collect

    info = json.loads((job / "members.json").read_text())
    best = [min(e["val_loss"] for e in json.loads((d / "history.json").read_text())["epochs"]) for d in dirs]
    np.testing.assert_allclose(info["val_loss"]["members"], best, rtol=1e-4)
    m = load_manifest(str(dataset))
    y, preds = None, []
    for d in dirs:
        _, y, p, _, _ = collect(tf.saved_model.load(str(d / "export")).model, m, str(dataset), "val")
        preds.append(p.reshape(y.shape))
    np.testing.assert_allclose(info["val_loss"]["ensemble"], np.mean((np.mean(preds, axis=0) - y) ** 2), rtol=1e-5)
    assert info["val_loss"]["ensemble"] < np.mean(best)

    # started again (as after a restart): the finished members are skipped, the export is rebuilt the same
    os.remove(job / "export" / "saved_model.pb")
    again = run_single(args, timeout=600)
    assert again.count("already trained, skipped") == 2
    np.testing.assert_allclose(load_predictor(str(job / "export"))(raw)[:, 0], ens, rtol=1e-6, atol=1e-6)
    for d in dirs:
        assert len(json.loads((d / "history.json").read_text())["epochs"]) == 2  # not trained again


def test_members_on_two_workers(dataset, tmp_path):
    """Every worker trains every member in step (the same collectives); only the chief writes the
    members' exports and the mean."""
    job = tmp_path / "job"
    code, out = run_workers(2, trainer(dataset, job, "--epochs", "1", "--max-steps-per-epoch", "10", "--units", "8",
                                       "--members", "2", "--patience", "0"), timeout=480)
    assert code == 0, out[-3000:]
    assert (job / "export" / "saved_model.pb").exists() and (job / "eval.json").exists()
    for k in (0, 1):
        assert (job / f"member-{k}" / "member.json").exists()
        assert not (job / f"member-{k}" / "scratch").exists()  # the other worker's scratch is removed


def test_members_must_be_positive(dataset, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "training", *trainer(dataset, tmp_path / "j", "--members", "0")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--members must be >= 1" in proc.stderr


def test_the_default_trains_three_members_on_a_small_split(dataset, tmp_path):
    """No --members: auto, three networks (seeds 0..2) on this split of a few thousand windows,
    said in the log and recorded in config.json as what ran."""
    job = tmp_path / "job"
    out = run_single(["--data", str(dataset), "--job-dir", str(job), "--epochs", "1", "--max-steps-per-epoch", "3",
                      "--units", "4", "--patience", "0", "--no-evaluate"], timeout=600)
    windows = load_manifest(str(dataset)).windows("train")
    assert 0 < windows <= 50_000
    assert f"--members auto: an ensemble of 3 networks (seeds 0..2), as the {windows:,} train windows" in out
    info = json.loads((job / "members.json").read_text())
    assert len(info["members"]) == 3 and (job / "export" / "saved_model.pb").exists()
    config = json.loads((job / "config.json").read_text())
    assert config["train"]["members"] == 3 and [c["train"]["seed"] for c in config["members"]] == [0, 1, 2]


def test_auto_is_decided_from_the_manifest(dataset, monkeypatch, caplog):
    """Above the threshold auto trains one network, at it three (the train split's window count
    from the manifest, the same on every worker)."""
    from tests.training.conftest import config
    from training import config as config_lib
    from training.train import decide_members

    windows = load_manifest(str(dataset)).windows("train")
    cfg = config(dataset)
    assert cfg.train.members is None
    monkeypatch.setattr(config_lib, "AUTO_MEMBERS_MAX_TRAIN_WINDOWS", windows)
    assert decide_members(cfg).train.members == 3
    monkeypatch.setattr(config_lib, "AUTO_MEMBERS_MAX_TRAIN_WINDOWS", windows - 1)
    with caplog.at_level("INFO", logger="seqscale.train"):
        assert decide_members(cfg).train.members == 1
    assert f"--members auto: one network, as the {windows:,} train windows are over {windows - 1:,}" in caplog.text
    explicit = config(dataset, "--members", "2")
    assert explicit.train.members == 2  # a count is kept as given (run() decides only auto)
