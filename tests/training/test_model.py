"""Model settings that must hold: cuDNN eligibility, heads that fit the target, configs."""

import dataclasses

import pytest

import training  # noqa: F401  (Keras 2)
from contract.manifest import Boundaries, ColumnInfo, Counts, DatasetSpec, Encoding, Manifest
from contract.window import WindowSpec
from training.config import ModelConfig
from training.model import CUDNN_SETTINGS, HeadError, build_model, lstm_layers, resolve_head


def manifest(task="regression", num_classes=None, look_back=12, features=("a", "b"), targets=("a",), seq=False):
    col = ColumnInfo("a", 10, 0.0, 1.0, -1, 1, 0.0, 1.0, True)
    return Manifest(
        format_version=2, created="",
        spec=DatasetSpec(time_column="t", features=features, targets=targets, task=task, num_classes=num_classes),
        window=WindowSpec(look_back=look_back, horizon=3, target_sequence=seq), time_kind="integer",
        time_range=(0, 1), step=1, max_gap=1, split_boundaries=Boundaries(1, 1), scaler="standard",
        columns=(col, dataclasses.replace(col, name="b")), shards={}, counts=Counts(), encoding=Encoding(),
    )


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_layers_stay_cudnn_eligible(bidirectional):
    model = build_model(manifest(), ModelConfig(units=(32, 16, 8), bidirectional=bidirectional, dropout=0.3))
    layers = lstm_layers(model)
    assert len(layers) == (6 if bidirectional else 3)
    for layer in layers:
        cfg = layer.get_config()
        for key, value in CUDNN_SETTINGS.items():
            assert cfg[key] == value, (layer.name, key)
        assert cfg["dropout"] == 0.0  # dropout goes between layers, never inside the cell
    assert [layer.units for layer in lstm_layers(build_model(manifest(), ModelConfig()))] == [128, 64]


def test_heads_follow_the_task():
    assert resolve_head(manifest(), ModelConfig()).activation == "linear"
    assert resolve_head(manifest(task="binary", targets=("a",)), ModelConfig()).loss == "binary_crossentropy"
    h = resolve_head(manifest(task="multiclass", num_classes=4), ModelConfig())
    assert (h.activation, h.units) == ("softmax", 4)
    seq = build_model(manifest(seq=True), ModelConfig(units=(8,)))
    assert seq.output_shape == (None, 3, 1)


@pytest.mark.parametrize("task,classes,cfg,match", [
    ("regression", None, ModelConfig(head_activation="sigmoid"), "sigmoid output on a regression target is refused"),
    ("regression", None, ModelConfig(loss="binary_crossentropy"), "does not fit a regression target"),
    ("multiclass", 1, ModelConfig(), "softmax over 1 class"),
    ("binary", None, ModelConfig(head_activation="linear"), "needs a sigmoid output"),
    ("multiclass", 3, ModelConfig(loss="mse"), "needs a softmax output with sparse_categorical_crossentropy"),
])
def test_heads_that_do_not_fit_are_refused(task, classes, cfg, match):
    with pytest.raises(HeadError, match=match):
        resolve_head(manifest(task=task, num_classes=classes), cfg)


def test_mixed_precision_keeps_the_head_in_float32():
    import tensorflow as tf

    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model(manifest(), ModelConfig(units=(8,)), mixed_precision=True)
        assert model.get_layer("lstm_0").compute_dtype == "float16"
        assert model.get_layer("head").compute_dtype == "float32"
        assert model.output.dtype == tf.float32
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("seq", [False, True])
def test_linear_skip_adds_a_linear_map_of_the_window(seq):
    """--linear-skip: zero at the start (the LSTM's own head), then exactly the target column's
    window @ W + b beside it (numpy reference with the LSTM head's weights zeroed)."""
    import numpy as np

    m = manifest(seq=seq, targets=("b",))
    plain = build_model(m, ModelConfig(units=(8, 4), linear_skip=False, anchor="none"), seed=3)
    model = build_model(m, ModelConfig(units=(8, 4), linear_skip=True, anchor="none"), seed=3)  # the skip alone
    x = np.random.default_rng(0).normal(size=(5, 12, 2)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0), atol=1e-6)
    dense = model.get_layer("skip_dense")
    w = np.random.default_rng(1).normal(size=dense.kernel.shape).astype(np.float32)
    b = np.random.default_rng(2).normal(size=dense.bias.shape).astype(np.float32)
    dense.set_weights([w, b])
    head = model.get_layer("head_dense")
    head.set_weights([np.zeros_like(v) for v in head.get_weights()])
    want = x[:, :, 1] @ w + b  # the target b is the window's second column
    np.testing.assert_allclose(model.predict(x, verbose=0).reshape(5, -1), want, rtol=1e-5, atol=1e-5)
    for layer in lstm_layers(model):
        assert all(layer.get_config()[k] == v for k, v in CUDNN_SETTINGS.items())


def test_linear_skip_needs_the_target_among_the_features():
    with pytest.raises(HeadError, match="c is not among the features"):
        build_model(manifest(targets=("c",)), ModelConfig(units=(4,), linear_skip=True))


def test_linear_skip_is_on_by_default_when_the_targets_are_features():
    def has_skip(model):
        return any(layer.name == "skip_dense" for layer in model.layers)

    assert has_skip(build_model(manifest(), ModelConfig(units=(4,))))
    assert not has_skip(build_model(manifest(targets=("c",)), ModelConfig(units=(4,))))  # nothing to read
    assert not has_skip(build_model(manifest(), ModelConfig(units=(4,), linear_skip=False)))


@pytest.mark.parametrize("seq,levels", [(False, ()), (True, ()), (False, (0.1, 0.5, 0.9)), (True, (0.1, 0.9))])
def test_anchor_last_adds_the_targets_last_input_value(seq, levels):
    """--anchor last: the output is the level-model's output plus the target's value at the last
    input row, on every step and level (so the quantiles still never cross)."""
    import numpy as np

    m = manifest(seq=seq, targets=("b",))
    cfg = ModelConfig(units=(8,), quantiles=levels)
    plain = build_model(m, dataclasses.replace(cfg, anchor="none"), seed=3)
    model = build_model(m, dataclasses.replace(cfg, anchor="last"), seed=3)
    x = np.random.default_rng(0).normal(size=(5, 12, 2)).astype(np.float32)
    x[:, -1, 1] += 50.0  # far from the other rows: an anchor on the wrong row or column shows
    got, base = model.predict(x, verbose=0), plain.predict(x, verbose=0)
    last = x[:, -1, 1].reshape((5,) + (1,) * (got.ndim - 1))
    np.testing.assert_allclose(got, base + last, rtol=1e-5, atol=1e-4)
    if levels:
        assert (np.diff(got[..., :len(levels)], axis=-1) >= 0).all()


def test_anchor_relative_feeds_the_window_relative_to_the_last_value():
    """--anchor relative: the network sees the target column minus its last value (other columns
    as they are), so shifting the target's whole window by c shifts the forecast by exactly c."""
    import numpy as np

    m = manifest(targets=("b",))
    model = build_model(m, ModelConfig(units=(8,), anchor="relative"), seed=1)
    dense = model.get_layer("skip_dense")
    dense.set_weights([np.random.default_rng(1).normal(size=w.shape).astype(np.float32) for w in dense.get_weights()])
    x = np.random.default_rng(0).normal(size=(4, 12, 2)).astype(np.float32)
    shifted = x.copy()
    shifted[:, :, 1] += 7.0
    np.testing.assert_allclose(model.predict(shifted, verbose=0), model.predict(x, verbose=0) + 7.0, atol=1e-4)
    moved = x.copy()
    moved[:, :, 0] += 7.0  # a non-target column is read as it is
    assert np.abs(model.predict(moved, verbose=0) - model.predict(x, verbose=0)).max() > 1e-3


@pytest.mark.parametrize("seq,levels", [(False, ()), (True, (0.1, 0.5, 0.9)), (False, (0.1, 0.9))])
def test_anchor_scaled_is_equivariant_to_the_targets_level_and_scale(seq, levels):
    """--anchor scaled: the network reads the target's window relative to its last value in units
    of its spread over the window (RevIN-style), and its output change is multiplied back by that
    spread, so a target window moved to a + k * x moves every forecast to a + k * forecast (other
    columns read as they are); a flat window stays finite; the quantiles still never cross."""
    import numpy as np

    from training.model import SPREAD_FLOOR

    m = manifest(seq=seq, targets=("b",))
    model = build_model(m, ModelConfig(units=(8,), anchor="scaled", quantiles=levels), seed=1)
    names = {layer.name for layer in model.layers}
    for name in ("skip_dense", "head_dense", "level_dense", "level_skip_dense"):
        if name not in names:  # the levels' own layers: a mean head only
            continue
        dense = model.get_layer(name)  # random weights: a zero-initialized skip would hide a wrong input
        dense.set_weights([np.random.default_rng(1).normal(size=w.shape).astype(np.float32) for w in dense.get_weights()])
    x = np.random.default_rng(0).normal(size=(4, 12, 2)).astype(np.float32)
    base = model.predict(x, verbose=0)
    a, k = 40.0, 25.0
    moved = x.copy()
    moved[:, :, 1] = a + k * x[:, :, 1]
    got = model.predict(moved, verbose=0)
    np.testing.assert_allclose(got, a + k * base, rtol=1e-3, atol=1e-2)
    # the change from the last value is the network's output times the window's spread (numpy)
    spread = np.sqrt(moved[:, :, 1].var(axis=1) + SPREAD_FLOOR**2).reshape((4,) + (1,) * (got.ndim - 1))
    last = moved[:, -1, 1].reshape(spread.shape)
    assert np.abs((got - last) / spread).max() > 0.1  # not a constant: the window's spread really multiplies
    other = x.copy()
    other[:, :, 0] += 7.0  # a non-target column is read as it is: no equivariance there
    assert np.abs(model.predict(other, verbose=0) - base).max() > 1e-3
    flat = x.copy()
    flat[:, :, 1] = 3.0
    out = model.predict(flat, verbose=0)
    assert np.isfinite(out).all() and np.abs(out - 3.0).max() < 100 * SPREAD_FLOOR
    if levels:
        assert (np.diff(got[..., :len(levels)], axis=-1) >= 0).all()


def test_anchor_needs_a_regression_target_among_the_features():
    with pytest.raises(HeadError, match="c is not among the features"):
        build_model(manifest(targets=("c",)), ModelConfig(units=(4,), anchor="last"))
    with pytest.raises(HeadError, match="binary model outputs class probabilities"):
        build_model(manifest(task="binary"), ModelConfig(units=(4,), anchor="relative"))
    from training.model import resolve_anchor

    assert resolve_anchor(manifest(task="binary"), ModelConfig()) == "none"  # auto: only where it applies
    assert resolve_anchor(manifest(targets=("c",)), ModelConfig()) == "none"


def test_anchor_auto_follows_the_memory_and_the_level_of_the_target():
    """--anchor auto: AUTO_ANCHOR on a random walk (the last value is the best forecast), scaled
    there when each series was scaled alone (--scale-by series), AUTO_ANCHOR on one with little
    memory (AR(1), phi 0.45: repeating the last value errs more than the mean, but it explains
    ~20% of the next value's variance), none on white noise (persistence's error twice the mean's,
    r^2 ~ 0) and where it does not apply; the evidence equals numpy's."""
    import numpy as np

    from training.model import AUTO_ANCHOR, MEMORY_R2, choose_anchor

    rng = np.random.default_rng(0)

    def windows(series):
        starts = np.arange(len(series) - 13)
        x = np.stack([series[s : s + 12] for s in starts])[:, :, None].repeat(2, axis=2)
        return x, series[starts + 12][:, None]

    def ar1(phi, n=4000):
        e, out = rng.normal(size=n), np.zeros(n)
        for i in range(1, n):
            out[i] = phi * out[i - 1] + e[i]
        return out

    walk, noise = windows(np.cumsum(rng.normal(size=600))), windows(rng.normal(size=600))
    m = manifest(targets=("b",))
    cfg, ev = choose_anchor(m, ModelConfig(), *walk)
    assert cfg.anchor == AUTO_ANCHOR and ev.persistence_mse < ev.mean_mse
    assert choose_anchor(dataclasses.replace(m, scale_by="series"), ModelConfig(), *walk)[0].anchor == "scaled"
    x, y = walk
    assert ev.memory == pytest.approx(np.corrcoef(x[:, -1, 1], y[:, 0])[0, 1] ** 2)
    assert ev.persistence_mse == pytest.approx(np.mean((y[:, 0] - x[:, -1, 1]) ** 2))
    cfg, ev = choose_anchor(m, ModelConfig(), *windows(ar1(0.45)))
    assert cfg.anchor == AUTO_ANCHOR and ev.persistence_mse > ev.mean_mse and ev.memory > MEMORY_R2
    cfg, ev = choose_anchor(m, ModelConfig(), *noise)
    assert cfg.anchor == "none" and ev.memory < 0.02
    assert choose_anchor(m, ModelConfig(anchor="relative"), *noise)[0].anchor == "relative"  # as asked
    assert choose_anchor(manifest(task="binary"), ModelConfig(), *walk) == (ModelConfig(anchor="none"), None)
    assert choose_anchor(manifest(targets=("c",)), ModelConfig(), *walk)[0].anchor == "none"


@pytest.mark.parametrize("seq", [False, True])
def test_a_mean_head_alone_trains_the_lstm(seq):
    """--quantiles 0.1,0.9 (a mean head): the mean's output is the model without quantiles' (same
    seed: same layers, same initial weights, same output); a loss on the levels alone reaches only
    the levels' own weights (level_dense, level_skip_dense: what clipped_apart groups), a loss on
    the mean reaches the LSTM and not them; with 0.5 among the levels the levels train the LSTM."""
    import numpy as np
    import tensorflow as tf

    from training.quantiles import is_level_weight

    m = manifest(seq=seq)
    x = np.random.default_rng(0).normal(size=(6, 12, 2)).astype(np.float32)
    point = build_model(m, ModelConfig(units=(8, 4)), seed=2)
    quant = build_model(m, ModelConfig(units=(8, 4), quantiles=(0.1, 0.9)), seed=2)
    for layer in ("skip_dense", "level_skip_dense"):  # zero-initialized: random, so a wrong input would show
        w = quant.get_layer(layer)
        w.set_weights([np.random.default_rng(4).normal(size=v.shape).astype(np.float32) for v in w.get_weights()])
    point.get_layer("skip_dense").set_weights(quant.get_layer("skip_dense").get_weights())
    np.testing.assert_array_equal(quant(x).numpy()[..., 2], point(x).numpy())

    def grads(levels, channels):
        model = quant if levels == (0.1, 0.9) else build_model(m, ModelConfig(units=(8, 4), quantiles=levels), seed=2)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(model(x, training=True), channels, axis=-1) ** 2)
        g = tape.gradient(loss, model.trainable_weights)
        return {w.name: 0.0 if d is None else float(tf.reduce_max(tf.abs(d)))
                for w, d in zip(model.trainable_weights, g, strict=True)}

    levels_only, mean_only = grads((0.1, 0.9), [0, 1]), grads((0.1, 0.9), [2])
    own = {w.name for w in quant.trainable_weights if is_level_weight(w)}
    assert own == {f"{n}/{k}:0" for n in ("level_dense", "level_skip_dense") for k in ("kernel", "bias")}
    assert {n for n, v in levels_only.items() if v > 0} == own
    lstm = [n for n in mean_only if n.startswith("lstm_")]
    assert len(lstm) == 6 and not any(mean_only[n] for n in own) and all(mean_only[n] > 0 for n in lstm)
    median = grads((0.1, 0.5, 0.9), [0, 1, 2])
    assert all(median[n] > 0.0 for n in lstm)
