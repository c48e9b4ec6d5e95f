"""The stacked (optionally bidirectional) LSTM, a linear skip from the targets' past, and a head that fits the target.

LSTM layers keep the settings that let Keras use the fused cuDNN kernel on GPUs
(activation tanh, recurrent_activation sigmoid, recurrent_dropout 0, unroll False,
use_bias True): anything else silently falls back to a kernel several times slower.
Dropout is applied between layers instead of inside the recurrence for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from contract.logs import import_tensorflow
from contract.manifest import Manifest
from evaluation.quantiles import mean_head
from training.config import ModelConfig
from training.errors import HeadError
from training.quantiles import LevelFeatures, NonCrossingQuantiles, PinballLoss

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)

CUDNN_SETTINGS = {
    "activation": "tanh",
    "recurrent_activation": "sigmoid",
    "recurrent_dropout": 0.0,
    "unroll": False,
    "use_bias": True,
}


@dataclass(frozen=True)
class Head:
    activation: str
    loss: str
    units: int
    quantiles: tuple[float, ...] = ()  # levels of a quantile head (loss "pinball"), else ()


def resolve_head(manifest: Manifest, cfg: ModelConfig) -> Head:
    """Pick (or check) the output activation, loss and unit count for the manifest's task."""
    task = manifest.task
    n_targets = len(manifest.targets) * manifest.window.target_rows
    if task != "regression" and cfg.quantiles:
        raise HeadError(f"--quantiles forecasts a regression target; a {task} model outputs class probabilities "
                        "already: drop --quantiles")
    if task == "regression" and cfg.quantiles:
        if cfg.loss != "auto" or cfg.head_activation not in ("auto", "linear"):
            raise HeadError("--quantiles trains with the pinball loss on a linear output; drop --loss and "
                            "--head-activation (or set them to auto)")
        channels = len(cfg.quantiles) + (1 if mean_head(cfg.quantiles) else 0)  # the levels (and a mean head)
        return Head("linear", "pinball", n_targets * channels, tuple(cfg.quantiles))
    if task == "regression":
        act = "linear" if cfg.head_activation == "auto" else cfg.head_activation
        loss = "mse" if cfg.loss == "auto" else cfg.loss
        if act != "linear":
            raise HeadError(
                f"a {act} output on a regression target is refused: the targets are standardized "
                f"(unbounded, about mean 0, std 1), and {act} cannot reach most of them, so the loss stays "
                "flat. Use --head-activation linear (or auto)"
            )
        if loss not in ("mse", "huber", "mae"):
            raise HeadError(f"--loss {loss} does not fit a regression target; use mse, huber or mae")
        return Head("linear", loss, n_targets)
    if task == "binary":
        act = "sigmoid" if cfg.head_activation == "auto" else cfg.head_activation
        loss = "binary_crossentropy" if cfg.loss == "auto" else cfg.loss
        if act != "sigmoid" or loss != "binary_crossentropy":
            raise HeadError(
                f"a binary target needs a sigmoid output with binary_crossentropy, got {act} with {loss}; "
                "use --head-activation auto --loss auto"
            )
        return Head("sigmoid", loss, 1)
    if task == "multiclass":
        k = manifest.num_classes or 0
        act = "softmax" if cfg.head_activation == "auto" else cfg.head_activation
        loss = "sparse_categorical_crossentropy" if cfg.loss == "auto" else cfg.loss
        if k < 2:
            raise HeadError(f"softmax over {k} class(es) always outputs 1; a multiclass target needs >= 2 classes")
        if act != "softmax" or loss != "sparse_categorical_crossentropy":
            raise HeadError(
                f"a {k}-class target needs a softmax output with sparse_categorical_crossentropy, got {act} with "
                f"{loss}; use --head-activation auto --loss auto"
            )
        return Head("softmax", loss, k)
    raise HeadError(f"unknown task {task!r} in metadata.json")


class TakeColumns(tf.keras.layers.Layer):
    """x[..., columns]: the window's columns a linear skip reads."""

    def __init__(self, columns, **kwargs):
        super().__init__(**kwargs)
        self.columns = [int(c) for c in columns]

    def call(self, x):
        return tf.gather(x, self.columns, axis=-1)

    def get_config(self):
        return {**super().get_config(), "columns": self.columns}


def targets_not_features(manifest: Manifest) -> str:
    """'c is not among the features [...]': why a target's past is not in the window."""
    missing = [t for t in manifest.targets if t not in manifest.features]
    return (f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not among the features "
            f"{list(manifest.features)}")


def skip_columns(manifest: Manifest) -> tuple[int, ...]:
    """Positions of the targets among the window's features (the linear skip's inputs)."""
    positions = manifest.target_positions
    if positions is None:
        raise HeadError(
            f"--linear-skip reads the targets' own past from the window, but {targets_not_features(manifest)}; "
            "add the target to --features in preprocessing, or train with --no-linear-skip"
        )
    return positions


def uses_linear_skip(manifest: Manifest, cfg: ModelConfig) -> bool:
    """--linear-skip as set; by default on when every target is among the features (it has
    their past to read), off otherwise."""
    if cfg.linear_skip is None:
        return manifest.target_positions is not None
    return cfg.linear_skip


AUTO_ANCHOR = "last"  # what --anchor auto picks where the last value is a forecast to build on (study_defaults, 3 seeds)
MEMORY_R2 = 0.1  # --anchor auto anchors where the last value explains at least this share of the targets' variance


@dataclass(frozen=True)
class AnchorEvidence:
    """What --anchor auto decides from, on a sample of training windows (choose_anchor)."""

    persistence_mse: float  # repeating each target's last input value
    mean_mse: float  # the targets' mean
    memory: float  # mean r^2 of each target (and step) against its last input value
    by_series: bool  # the job scaled each series by its own statistics (--scale-by series)

    def describe(self, chosen: str) -> str:
        return (f"--anchor auto: {chosen} (on training windows the last value explains {self.memory:.0%} of the "
                f"targets' variance and repeating it errs {self.persistence_mse / max(self.mean_mse, 1e-30):.2f}x "
                f"the mean's squared error; {'each series scaled alone' if self.by_series else 'one scale'})")


def anchor_evidence(manifest: Manifest, x, y) -> AnchorEvidence | None:
    """The statistics behind --anchor auto on windows (x, y); None where no anchor applies (not
    regression, a target's past not in the window, no windows)."""
    import numpy as np

    from training.guard import mean_prediction, persistence_prediction

    y = np.asarray(y)
    last = persistence_prediction(manifest, x, y.shape) if len(y) else None
    if last is None:
        return None
    y64, last64 = y.astype(np.float64), last.astype(np.float64)
    flat_y, flat_last = y64.reshape(len(y), -1), last64.reshape(len(y), -1)
    r2 = []
    for j in range(flat_y.shape[1]):
        a, b = flat_last[:, j] - flat_last[:, j].mean(), flat_y[:, j] - flat_y[:, j].mean()
        denom = np.sqrt((a * a).sum() * (b * b).sum())
        r2.append(float((a * b).sum() / denom) ** 2 if denom > 0 else 0.0)
    return AnchorEvidence(persistence_mse=float(np.mean((y64 - last64) ** 2)),
                          mean_mse=float(np.mean((y64 - mean_prediction(manifest, y, len(y))) ** 2)),
                          memory=float(np.mean(r2)), by_series=manifest.scale_by == "series")


def choose_anchor(manifest: Manifest, cfg: ModelConfig, x, y) -> tuple[ModelConfig, AnchorEvidence | None]:
    """`cfg` with --anchor auto decided from training windows (x, y: a sample of them), and the
    evidence (None where no anchor applies: not regression, a target's past not in the window):
    - none where the last value tells little about the targets (a target without memory: the
      network would first have to learn to cancel it): it explains under MEMORY_R2 of their
      variance and repeating it forecasts them no better than their mean;
    - scaled where each series was scaled alone (--scale-by series: a global model over series
      of different sizes and growth), so the network reads and forecasts the change in each
      window's own units and a large smooth series' small changes weigh as much as a small noisy
      one's (the window scaling of DeepAR and NeuralForecast's global models);
    - AUTO_ANCHOR (last) otherwise."""
    if cfg.anchor != "auto":
        return cfg, None
    ev = anchor_evidence(manifest, x, y)
    chosen = "none"
    if ev is not None and (ev.memory >= MEMORY_R2 or ev.persistence_mse < ev.mean_mse):
        chosen = "scaled" if ev.by_series else AUTO_ANCHOR
    return replace(cfg, anchor=chosen), ev


def resolve_anchor(manifest: Manifest, cfg: ModelConfig) -> str:
    """--anchor as set, checked; auto (not decided from the data by choose_anchor) is
    AUTO_ANCHOR where it applies (a regression target whose past is in the window), else none."""
    if cfg.anchor == "auto":
        ok = manifest.task == "regression" and manifest.target_positions is not None
        return AUTO_ANCHOR if ok else "none"
    if cfg.anchor != "none" and manifest.task != "regression":
        raise HeadError(f"--anchor {cfg.anchor} forecasts a change in a regression target; a {manifest.task} "
                        "model outputs class probabilities: drop --anchor")
    if cfg.anchor != "none" and manifest.target_positions is None:
        raise HeadError(f"--anchor {cfg.anchor} adds each target's last input value to the output, but "
                        f"{targets_not_features(manifest)}; add the target to --features in preprocessing, or use "
                        "--anchor none")
    return cfg.anchor


SPREAD_FLOOR = 0.01  # the least window spread --anchor scaled divides by, in the target's scaled units (a flat window)


def window_spread(t):
    """Each target's standard deviation over the window (t: [batch, look_back, targets]) -> [batch,
    targets], floored at SPREAD_FLOOR so a flat window does not divide by zero."""
    _, var = tf.nn.moments(t, axes=[1])
    return tf.sqrt(var + SPREAD_FLOOR**2)


class RelativeToLast(tf.keras.layers.Layer):
    """The window with the `columns` taken relative to their value at the last input row and,
    when `scaled`, divided by their spread over the window (window_spread)."""

    def __init__(self, columns, scaled: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.columns, self.scaled = [int(c) for c in columns], bool(scaled)

    def call(self, x):
        onehot = tf.one_hot(self.columns, tf.shape(x)[-1], dtype=x.dtype)  # [targets, features]
        mask = tf.reduce_sum(onehot, axis=0)
        if not self.scaled:
            return x - x[:, -1:, :] * mask
        t = tf.gather(x, self.columns, axis=-1)  # [batch, look_back, targets]
        rel = (t - t[:, -1:, :]) / window_spread(t)[:, None, :]
        return x * (1.0 - mask) + tf.einsum("blt,tf->blf", rel, onehot)

    def get_config(self):
        return {**super().get_config(), "columns": self.columns, "scaled": self.scaled}


class AddLast(tf.keras.layers.Layer):
    """output + each target's last input value (`columns` of the window's last row), broadcast
    over a target sequence's steps (`steps`) and a quantile head's levels (`levels`); when
    `scaled`, the output is first multiplied by each target's spread over the window."""

    def __init__(self, columns, steps: bool = False, levels: bool = False, scaled: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.columns, self.steps, self.levels = [int(c) for c in columns], bool(steps), bool(levels)
        self.scaled = bool(scaled)

    def call(self, inputs):
        out, x = inputs
        if self.scaled:
            out = out * self.like_output(window_spread(tf.cast(tf.gather(x, self.columns, axis=-1), out.dtype)))
        return out + self.like_output(tf.cast(tf.gather(x[:, -1, :], self.columns, axis=-1), out.dtype))

    def like_output(self, v):
        """[batch, targets] broadcast over the output's steps and levels."""
        if self.steps:
            v = v[:, None, :]
        if self.levels:
            v = v[..., None]
        return v

    def get_config(self):
        return {**super().get_config(), "columns": self.columns, "steps": self.steps, "levels": self.levels,
                "scaled": self.scaled}


def build_model(manifest: Manifest, cfg: ModelConfig, *, seed: int = 0, mixed_precision: bool = False) -> tf.keras.Model:
    """Stacked LSTM: [LSTM (return sequences) -> Dropout] x (n-1) -> LSTM -> Dropout -> Dense head,
    plus (uses_linear_skip) a Dense over the targets' columns of the window added before the activation,
    plus (resolve_anchor: last, relative, scaled) each target's last input value added to the output."""
    head = resolve_head(manifest, cfg)
    anchor = resolve_anchor(manifest, cfg)
    look_back, n_features = manifest.x_shape
    init = tf.keras.initializers
    inputs = tf.keras.Input(shape=(look_back, n_features), name="x")
    seen = inputs
    if anchor in ("relative", "scaled"):
        seen = RelativeToLast(manifest.target_positions, scaled=anchor == "scaled", dtype="float32",
                              name="relative_to_last")(inputs)
    h = seen
    for i, units in enumerate(cfg.units):
        last = i == len(cfg.units) - 1
        layer = tf.keras.layers.LSTM(
            units,
            return_sequences=not last,
            kernel_initializer=init.GlorotUniform(seed=seed + 2 * i),
            recurrent_initializer=init.Orthogonal(seed=seed + 2 * i + 1),
            name=f"lstm_{i}",
            **CUDNN_SETTINGS,
        )
        if cfg.bidirectional:
            layer = tf.keras.layers.Bidirectional(layer, name=f"bilstm_{i}")
        h = layer(h)
        if cfg.dropout:
            h = tf.keras.layers.Dropout(cfg.dropout, seed=seed + 100 + i, name=f"dropout_{i}")(h)
    apart = mean_head(head.quantiles)  # a mean head, with the levels beside it
    n_levels = len(head.quantiles)
    units = head.units // (n_levels + 1) if apart else head.units  # the mean's outputs (or the whole head's)
    out = tf.keras.layers.Dense(units, kernel_initializer=init.GlorotUniform(seed=seed + 999), name="head_dense")(h)
    flat = None
    if uses_linear_skip(manifest, cfg):
        # LSTNet's autoregressive component (Lai et al. 2018): each output gets a linear map of
        # the targets' own past (their columns of the window), beside the LSTM. Only the target
        # columns: all features x L inputs overfit a small data set (Seattle weather, 1,000
        # windows). Zero-initialized so training starts from the LSTM's own head.
        own = TakeColumns(skip_columns(manifest), name="skip_columns")(seen)
        flat = tf.keras.layers.Flatten(name="skip_flatten")(own)
        skip = tf.keras.layers.Dense(units, kernel_initializer="zeros", name="skip_dense")(flat)
        out = tf.keras.layers.Add(name="head_sum")([out, skip])
    # The activation runs in float32 even under mixed precision (numerically safe softmax/sigmoid).
    out = tf.keras.layers.Activation(head.activation, dtype="float32", name="head")(out)
    if head.quantiles:
        # one output per target (and step) and level: [batch, (H,) targets, Q], sorted by construction,
        # plus the mean head's channel when 0.5 is not a level
        y_shape = manifest.y_shape if manifest.window.target_sequence else (len(manifest.targets),)
        if apart:
            # The mean is the model without quantiles, layer for layer and seed for seed; the levels
            # are their own Dense (and skip) on the LSTM's features behind a stop-gradient, so they
            # never move the layers the mean trains (training/quantiles.py, LevelFeatures)
            lv = tf.keras.layers.Dense(units * n_levels, kernel_initializer=init.GlorotUniform(seed=seed + 998),
                                       name="level_dense")(LevelFeatures(name="level_features")(h))
            if flat is not None:
                lv = tf.keras.layers.Add(name="level_sum")(
                    [lv, tf.keras.layers.Dense(units * n_levels, kernel_initializer="zeros", name="level_skip_dense")(flat)])
            lv = tf.keras.layers.Reshape((*y_shape, n_levels), dtype="float32", name="levels")(
                tf.keras.layers.Activation("linear", dtype="float32", name="level_head")(lv))
            out = tf.keras.layers.Reshape((*y_shape, 1), dtype="float32", name="mean")(out)
            out = tf.keras.layers.Concatenate(axis=-1, dtype="float32", name="y")([lv, out])
        else:
            out = tf.keras.layers.Reshape((*y_shape, n_levels), dtype="float32", name="y")(out)
        out = NonCrossingQuantiles(mean=apart, dtype="float32", name="quantiles")(out)
    elif manifest.window.target_sequence and manifest.task == "regression":
        out = tf.keras.layers.Reshape(manifest.y_shape, dtype="float32", name="y")(out)
    if anchor != "none":
        # the network forecasts the change from the last value (every level and the mean head
        # shift alike, so the quantiles still never cross)
        out = AddLast(manifest.target_positions, steps=manifest.window.target_sequence, levels=bool(head.quantiles),
                      scaled=anchor == "scaled", dtype="float32", name="anchor_last")([out, inputs])
    return tf.keras.Model(inputs, out, name="seqscale_lstm")


def make_loss(head: Head) -> tf.keras.losses.Loss:
    if head.loss == "pinball":
        return PinballLoss(head.quantiles)
    return {
        "mse": tf.keras.losses.MeanSquaredError,
        "mae": tf.keras.losses.MeanAbsoluteError,
        "huber": tf.keras.losses.Huber,
        "binary_crossentropy": tf.keras.losses.BinaryCrossentropy,
        "sparse_categorical_crossentropy": tf.keras.losses.SparseCategoricalCrossentropy,
    }[head.loss]()


def lstm_layers(model: tf.keras.Model) -> list[tf.keras.layers.LSTM]:
    out = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.Bidirectional):
            out += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, tf.keras.layers.LSTM):
            out.append(layer)
    return out
