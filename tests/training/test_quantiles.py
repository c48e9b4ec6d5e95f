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


def test_without_the_median_a_mean_head_follows_the_levels_and_learns_the_mean():
    """--quantiles 0.1,0.9: one more channel, the mean (root mean squared error), never sorted
    with the levels; the loss is the levels' pinball plus half the mean's RMSE (numpy), and fitting
    constants to skewed draws gives the empirical quantiles and the mean, not the median."""
    import tensorflow as tf

    from evaluation.quantiles import mean_head, pinball, point_index, point_level
    from training.quantiles import NonCrossingQuantiles, PinballLoss

    levels = (0.1, 0.9)
    assert mean_head(levels) and point_index(levels) == 2 and point_level(levels) == "mean"
    assert not mean_head(LEVELS) and point_index(LEVELS) == 1 and point_level(LEVELS) == 0.5
    rng = np.random.default_rng(3)
    x = rng.normal(scale=20, size=(512, 2, 3)).astype(np.float32)
    out = NonCrossingQuantiles(mean=True)(x).numpy()
    assert (np.diff(out[..., :2], axis=-1) >= 0).all() and np.array_equal(out[..., 2], x[..., 2])
    y = rng.normal(size=(64, 2))
    p = rng.normal(size=(64, 2, 3))
    rmse = np.sqrt(np.mean((y - p[..., 2]) ** 2))
    want = pinball(y, p[..., :2], levels).mean(axis=-1).mean() + rmse / 2
    assert float(PinballLoss(levels)(y, p)) == pytest.approx(want, rel=1e-12)
    # the mean head's gradient is the batch RMSE's (numpy), and the loss scales with the target:
    # at a hundredth of the scale both terms shrink alike, so the mean head keeps its weight
    pv = tf.Variable(p)
    with tf.GradientTape() as tape:
        loss = PinballLoss(levels)(y, pv)
    grad = tape.gradient(loss, pv).numpy()
    np.testing.assert_allclose(grad[..., 2], -(y - p[..., 2]) / (y.size * rmse), rtol=1e-9)
    assert float(PinballLoss(levels)(y / 100, p / 100)) == pytest.approx(want / 100, rel=1e-9)

    y = rng.exponential(size=(20_000, 1)).astype(np.float32)  # skewed: mean 1, median ln 2
    raw = tf.Variable(np.zeros((1, 1, 3), np.float32))
    opt = tf.keras.optimizers.Adam(0.05)
    head, loss_fn = NonCrossingQuantiles(mean=True), PinballLoss(levels)
    for _ in range(800):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, tf.repeat(head(raw), len(y), axis=0))
        opt.apply_gradients([(tape.gradient(loss, raw), raw)])
    got = head(raw).numpy().ravel()
    np.testing.assert_allclose(got[:2], np.quantile(y, levels), atol=0.05)
    assert got[2] == pytest.approx(y.mean(), abs=0.03) and abs(got[2] - np.median(y)) > 0.25


def test_mean_trunk_dense_lets_only_the_mean_train_the_features():
    """MeanTrunkDense outputs what a Dense with its weights outputs (numpy); the gradient reaching its
    input is the mean channel's alone (the levels' channels contribute zero), while every channel's
    own weights get their plain gradient; and in a built model with --quantiles 0.1,0.9 a loss on
    the levels alone leaves the LSTM's weights without gradient, a loss on the mean does not."""
    import tensorflow as tf

    from training.quantiles import MeanTrunkDense

    rng = np.random.default_rng(5)
    channels, targets = 3, 2  # two levels and the mean, per target
    h = tf.Variable(rng.normal(size=(16, 8)).astype(np.float32))
    layer = MeanTrunkDense(targets * channels, channels)
    plain = tf.keras.layers.Dense(targets * channels)
    layer.build(h.shape)
    plain.build(h.shape)
    plain.set_weights(layer.get_weights())
    w, b = (v.numpy() for v in (layer.kernel, layer.bias))
    np.testing.assert_allclose(layer(h).numpy(), h.numpy() @ w + b, rtol=1e-5, atol=1e-5)
    is_mean = np.arange(targets * channels) % channels == channels - 1
    upstream = rng.normal(size=(16, targets * channels)).astype(np.float32)
    for net in (layer, plain):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(net(h) * upstream)
        g_h, g_w = tape.gradient(loss, [h, net.kernel])
        if net is layer:
            mine_h, mine_w = g_h.numpy(), g_w.numpy()
    np.testing.assert_allclose(mine_h, upstream[:, is_mean] @ w[:, is_mean].T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mine_w, g_w.numpy(), rtol=1e-5, atol=1e-5)  # the weights train as a Dense's
    assert np.abs(g_h.numpy() - mine_h).max() > 0.1  # a plain Dense passes the levels' gradient too

