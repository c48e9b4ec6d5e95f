"""--ema: the weights' moving average replaces the weights at each epoch's last step, so what
validation and early stopping see is the average (checked against a numpy EMA of the steps)."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest
import tensorflow as tf

from training.config import Config, ConfigError, TrainConfig, build_parser, check, resolve
from training.train import make_optimizer

STEPS = 4


def test_each_epoch_ends_on_the_moving_average_of_its_steps():
    cfg = Config(train=TrainConfig(optimizer="sgd", momentum=0.0, clipnorm=0.0, ema=0.5))
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    model.compile(optimizer=make_optimizer(cfg, 0.1, steps_per_epoch=STEPS), loss="mse")
    seen = []

    class Record(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(self.model.weights[0].numpy().ravel()[0]))

        def on_epoch_end(self, epoch, logs=None):
            seen.append(("end", float(self.model.weights[0].numpy().ravel()[0])))

    x, y = np.ones((STEPS, 1), np.float32), np.zeros((STEPS, 1), np.float32)
    model.fit(x, y, batch_size=1, epochs=2, shuffle=False, verbose=0, callbacks=[Record()])
    # numpy: plain SGD on w*1 -> 0 (gradient 2w), the EMA of the weights after every step,
    # and at each epoch's last step the weight replaced by that average
    w, avg, want = 1.0, 1.0, []
    for _epoch in range(2):
        for step in range(STEPS):
            w -= 0.1 * 2 * w
            avg = 0.5 * avg + 0.5 * w
            if step == STEPS - 1:
                w = avg
            want.append(w)
        want.append(("end", w))
    assert len(seen) == len(want)
    for g, e in zip(seen, want, strict=True):
        if isinstance(e, tuple):
            assert g[0] == "end" and g[1] == pytest.approx(e[1], rel=1e-5)
        else:
            assert g == pytest.approx(e, rel=1e-5)
    assert want[0] != pytest.approx(want[STEPS - 1])  # mid-epoch weights are the raw ones


def test_ema_flag_is_checked():
    cfg = resolve(build_parser().parse_args(["--data", "d", "--job-dir", "j", "--ema", "0.99"]))
    assert cfg.train.ema == 0.99
    check(cfg)
    with pytest.raises(ConfigError, match="--ema must be in"):
        check(resolve(build_parser().parse_args(["--data", "d", "--job-dir", "j", "--ema", "1"])))
