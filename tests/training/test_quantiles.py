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
    with the levels; the loss is the levels' pinball plus the mean's squared error (numpy), and fitting
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
    want = pinball(y, p[..., :2], levels).mean(axis=-1).mean() + np.mean((y - p[..., 2]) ** 2)
    assert float(PinballLoss(levels)(y, p)) == pytest.approx(want, rel=1e-12)
    # the mean head's gradient is exactly the MSE's of a point model (Keras' own loss, and numpy)
    pv = tf.Variable(p)
    with tf.GradientTape() as tape:
        loss = PinballLoss(levels)(y, pv)
    grad = tape.gradient(loss, pv).numpy()
    np.testing.assert_allclose(grad[..., 2], -2 * (y - p[..., 2]) / y.size, rtol=1e-9)
    mv = tf.Variable(p[..., 2])
    with tf.GradientTape() as tape:
        mse = tf.keras.losses.MeanSquaredError()(y, mv)
    np.testing.assert_allclose(grad[..., 2], tape.gradient(mse, mv).numpy(), rtol=1e-9)

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


def test_clipped_apart_clips_the_levels_and_the_rest_by_their_own_norms():
    """clipped_apart(Adam) with global_clipnorm 1: the levels' gradients (level_dense, level_skip_dense)
    and the others are each clipped to global norm 1 (numpy), so large level gradients do not shrink
    the others' step, as one global norm over both would (checked on a plain Adam)."""
    import tensorflow as tf

    from training.quantiles import clipped_apart

    rng = np.random.default_rng(7)
    names = ["lstm_0/kernel", "head_dense/kernel", "level_dense/kernel", "level_skip_dense/kernel"]
    grads = [rng.normal(scale=s, size=(3, 4)).astype(np.float32) for s in (0.01, 0.02, 5.0, 3.0)]
    start = [rng.normal(size=(3, 4)).astype(np.float32) for _ in names]

    def step(cls):
        vs = []
        for w, n in zip(start, names, strict=True):
            with tf.name_scope(n.split("/")[0]):
                vs.append(tf.Variable(w, name="kernel"))
        opt = cls(learning_rate=1.0, global_clipnorm=1.0)
        seen = []
        orig = opt._clip_gradients
        opt._clip_gradients = lambda g: seen.append(orig(g)) or seen[-1]
        opt.apply_gradients(zip([tf.constant(g) for g in grads], vs, strict=True))
        return [c.numpy() for c in seen[0]], [v.name for v in vs]

    clipped, var_names = step(clipped_apart(tf.keras.optimizers.Adam))
    assert [n.split("/")[0] for n in var_names] == [n.split("/")[0] for n in names]
    rest, lv = np.sqrt(sum((g**2).sum() for g in grads[:2])), np.sqrt(sum((g**2).sum() for g in grads[2:]))
    assert rest < 1 < lv
    for c, g in zip(clipped[:2], grads[:2], strict=True):
        np.testing.assert_allclose(c, g, rtol=1e-6)  # under the norm: untouched
    for c, g in zip(clipped[2:], grads[2:], strict=True):
        np.testing.assert_allclose(c, g / lv, rtol=1e-5)
    together, _ = step(tf.keras.optimizers.Adam)
    both = np.sqrt(rest**2 + lv**2)
    np.testing.assert_allclose(together[0], grads[0] / both, rtol=1e-5)  # one norm: the LSTM's step shrinks
