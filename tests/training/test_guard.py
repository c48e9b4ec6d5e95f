"""The flat-loss / NaN guard on a tiny model: flat, falling, and NaN losses."""

import numpy as np

import training  # noqa: F401  (Keras 2)


def test_flat_loss_guard_unit(tmp_path):
    import tensorflow as tf

    from training.guard import FlatLossGuard

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
