"""Persisted callback state: the plateau factor and the state store, without a cluster."""

import json

import numpy as np
import pytest
import tensorflow as tf

import training  # noqa: F401
from training.state import PlateauFactor, StateStore


def test_plateau_factor_lowers_the_lr_and_survives_a_restart(tmp_path):
    store = StateStore(str(tmp_path), "plateau", writer=True)
    var = tf.Variable(1.0)
    cb = PlateauFactor(var, store, patience=2, factor=0.5)
    losses = [1.0, 0.9, 0.95, 0.92, 0.91, 0.93]  # no improvement after epoch 2 -> halve at epochs 4 and 6
    for epoch, v in enumerate(losses):
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, {"val_loss": v})
    assert float(var.numpy()) == pytest.approx(0.25)
    # a restarted job resuming at epoch 4 gets the factor and counters of epoch 3
    var2 = tf.Variable(1.0)
    cb2 = PlateauFactor(var2, store, patience=2, factor=0.5)
    cb2.on_epoch_begin(4)
    assert float(var2.numpy()) == pytest.approx(0.5) and cb2.best == pytest.approx(0.9) and cb2.wait == 0


def test_state_store_keeps_recent_epochs_and_weight_snapshots(tmp_path):
    store = StateStore(str(tmp_path), "es", writer=True)
    for e in range(8):
        store.save(e, {"best_epoch": 2})
    assert sorted(map(int, store.states())) == [3, 4, 5, 6, 7]
    w = [np.arange(6.0).reshape(2, 3), np.ones(4)]
    store.save_weights(2, w)
    store.save_weights(1, w)
    store.prune_weights({2})
    assert [a.tolist() for a in store.load_weights(2)] == [a.tolist() for a in w]
    assert not (tmp_path / "es-weights-epoch1.npz").exists()
    reader = StateStore(str(tmp_path), "es", writer=False)
    reader.save(9, {"x": 1})  # non-chief workers keep their state in memory and never write
    assert reader.states()["9"] == {"x": 1}
    assert "9" not in json.loads((tmp_path / "es.json").read_text())


def test_plateau_factor_watches_its_monitor(tmp_path):
    """monitor="val_point_mse" (a mean head's run): the factor follows that value, not val_loss."""
    var = tf.Variable(1.0)
    cb = PlateauFactor(var, StateStore(str(tmp_path), "plateau", writer=True), patience=1, factor=0.5,
                       monitor="val_point_mse")
    for epoch, (loss, point) in enumerate([(1.0, 1.0), (0.9, 1.1), (0.8, 0.5)]):
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, {"val_loss": loss, "val_point_mse": point})
    assert float(var.numpy()) == pytest.approx(0.5) and cb.best == pytest.approx(0.5)
