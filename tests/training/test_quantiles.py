"""The quantile head never crosses; the pinball loss and its gradient equal numpy's."""

import numpy as np
import pytest

import training  # noqa: F401

LEVELS = (0.1, 0.5, 0.9)


def test_quantiles_never_cross_on_random_inputs():
    from training.quantiles import NonCrossingQuantiles

    rng = np.random.default_rng(0)
    x = rng.normal(scale=20, size=(4096, 3, 2, 5)).astype(np.float32)  # large, of either sign
    q = NonCrossingQuantiles()(x).numpy()
    assert q.shape == x.shape and (np.diff(q, axis=-1) >= 0).all()
    np.testing.assert_allclose(q[..., 0], x[..., 0])  # the base is the lowest level


def test_pinball_loss_and_gradient_against_numpy():
    import tensorflow as tf

    from evaluation.quantiles import pinball
    from training.quantiles import PinballLoss

    rng = np.random.default_rng(1)
    y = rng.normal(size=(64, 4, 2))
    q = tf.Variable(rng.normal(size=(64, 4, 2, 3)))
    with tf.GradientTape() as tape:
        loss = PinballLoss(LEVELS)(y, q)
    want = pinball(y, q.numpy(), LEVELS).mean()
    assert float(loss) == pytest.approx(want, rel=1e-12)
    # d/dq of max(tau*u, (tau-1)*u), u = y - q: -tau where y > q, 1 - tau where y < q; Keras averages
    tau = np.array(LEVELS)
    grad = np.where(y[..., None] > q.numpy(), -tau, 1 - tau) / q.numpy().size
    np.testing.assert_allclose(tape.gradient(loss, q).numpy(), grad, rtol=1e-9, atol=1e-15)


def test_minimizing_the_pinball_loss_finds_the_quantiles():
    """Fit a constant per level to N(0, 1) draws: the empirical quantiles (a check that the loss
    means what it says, not only that it matches a formula)."""
    import tensorflow as tf

    from training.quantiles import NonCrossingQuantiles, PinballLoss

    y = np.random.default_rng(2).normal(size=(20_000, 1)).astype(np.float32)
    raw = tf.Variable(np.zeros((1, 1, 3), np.float32))
    opt = tf.keras.optimizers.Adam(0.05)
    loss_fn = PinballLoss(LEVELS)
    for _ in range(600):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, tf.repeat(NonCrossingQuantiles()(raw), len(y), axis=0))
        opt.apply_gradients([(tape.gradient(loss, raw), raw)])
    got = NonCrossingQuantiles()(raw).numpy().ravel()
    np.testing.assert_allclose(got, np.quantile(y, LEVELS), atol=0.05)
