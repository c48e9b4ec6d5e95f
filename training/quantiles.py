"""Quantile outputs: a head whose levels never cross, and the pinball loss (issue #28's first pieces).

The head parameterizes Q quantiles as a base plus non-negative increments (softplus), so
q_1 <= q_2 <= ... <= q_Q for every input by construction, not by a penalty. The loss is the
pinball (quantile) loss averaged over levels, windows, steps and targets, as NeuralForecast's
MQLoss and GluonTS's quantile loss train it. Scores of the outputs: evaluation/quantiles.py.
"""

from __future__ import annotations

from contract.logs import import_tensorflow
from evaluation.quantiles import mean_head

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)


class NonCrossingQuantiles(tf.keras.layers.Layer):
    """[..., Q] unconstrained -> [..., Q] sorted: q_1 = x_1, q_k = x_1 + sum_{j<=k} softplus(x_j).

    With `mean` (a mean head), the input has one more channel, the mean, passed through unsorted."""

    def __init__(self, mean: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mean = mean

    def call(self, x):
        mean = x[..., -1:] if self.mean else None
        x = x[..., :-1] if self.mean else x
        base = x[..., :1]
        steps = tf.nn.softplus(x[..., 1:])
        q = tf.concat([base, base + tf.cumsum(steps, axis=-1)], axis=-1)
        return q if mean is None else tf.concat([q, mean], axis=-1)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean}


class LevelFeatures(tf.keras.layers.Layer):
    """The LSTM's features as the levels of a mean-head model see them: unchanged, but no gradient
    flows back through them (tf.stop_gradient).

    With a mean head (`--quantiles` without 0.5), the mean is the model without quantiles layer for
    layer, and its MSE alone trains the LSTM; the levels are their own Dense (and linear skip) on
    these features, trained by the pinball loss. So the point forecast is the one the same run
    without quantiles makes. Why: with the features shared, the pinball loss pulled them its way,
    and the mean's validation MSE on hourly city temperatures was 1.74x the point run's
    (BENCHMARKS.md, "The mean apart")."""

    def call(self, x):
        return tf.stop_gradient(x)


LEVEL_LAYERS = ("level_dense", "level_skip_dense")  # the levels' own weights in a mean-head model


def is_level_weight(variable) -> bool:
    """Whether a model variable (`level_dense/kernel:0`, under any name scope) is a level's own."""
    return any(part in LEVEL_LAYERS for part in variable.name.split("/")[:-1])


def clipped_apart(optimizer_cls):
    """`optimizer_cls` whose `global_clipnorm` clips the levels' weights (LEVEL_LAYERS) and all the
    others as two groups, each by its own global norm. One norm over both would let the pinball
    loss's gradients scale the LSTM's steps down, and the mean would no longer train as the run
    without quantiles does. Other clipping options are unchanged."""

    if not callable(getattr(optimizer_cls, "_clip_gradients", None)):  # tf-keras' hook, pinned in constraints.txt
        raise RuntimeError(f"{optimizer_cls.__name__} has no _clip_gradients: the levels cannot be clipped apart "
                           "with this tf-keras; pin tf-keras as constraints.txt does")

    class ClippedApart(optimizer_cls):
        def apply_gradients(self, grads_and_vars, *args, **kwargs):
            pairs = list(grads_and_vars)
            # the order _clip_gradients sees: the pairs with a gradient (filter_empty_gradients)
            self._levels_mask = [is_level_weight(v) for g, v in pairs if g is not None]
            return super().apply_gradients(pairs, *args, **kwargs)

        def _clip_gradients(self, grads):
            mask = getattr(self, "_levels_mask", None)
            if not self.global_clipnorm or not mask or len(mask) != len(grads) or all(mask) or not any(mask):
                return super()._clip_gradients(grads)
            out = list(grads)
            for group in (True, False):
                idx = [i for i, m in enumerate(mask) if m is group]
                for i, g in zip(idx, tf.clip_by_global_norm([grads[i] for i in idx], self.global_clipnorm)[0],
                                strict=True):
                    out[i] = g
            return out

    ClippedApart.__name__ = f"{optimizer_cls.__name__}ClippedApart"
    return ClippedApart


class PinballLoss(tf.keras.losses.Loss):
    """Mean pinball loss: y_true [..., T] against y_pred [..., T, Q] at `levels` (Q,).

    With a mean head (0.5 not among the levels), y_pred has a (Q+1)-th channel, the point
    forecast, and each element adds its squared error: the loss is the levels' pinball loss plus
    the mean's MSE, and the mean's gradient is exactly the MSE's of the run without quantiles (the
    median is not the RMSE-optimal forecast of a skewed target). Their relative size does not
    matter: the levels do not train the layers below them (LevelFeatures), and early stopping
    watches the mean's validation MSE alone (`stop_monitor`). Before the levels were set apart,
    the two terms shared the LSTM and its stopping, and a squared error ~1/50 of the pinball loss
    on hourly city temperatures stopped the mean half-trained (an RMSE term was the first fix)."""

    def __init__(self, levels, name: str = "pinball", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.levels = [float(x) for x in levels]
        self.mean = mean_head(self.levels)

    def call(self, y_true, y_pred):
        q = len(self.levels)
        tau = tf.constant(self.levels, y_pred.dtype)
        y = tf.cast(y_true, y_pred.dtype)
        u = y[..., None] - y_pred[..., :q]
        loss = tf.reduce_mean(tf.maximum(tau * u, (tau - 1) * u), axis=-1)
        if not self.mean:
            return loss
        return loss + tf.square(y - y_pred[..., q])

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}


def _point_metric(index: int, name: str, error):
    """A Keras metric named `name`: the mean `error` of one channel (the point forecast) of a quantile output."""

    def metric(y_true, y_pred):
        return tf.reduce_mean(error(tf.cast(y_true, y_pred.dtype) - y_pred[..., index]), axis=-1)

    metric.__name__ = name  # Keras names a function metric (and its history key) by it
    return metric


def point_mae(index: int):
    """The MAE of the point forecast's channel, named `mae` like the point models'."""
    return _point_metric(index, "mae", tf.abs)


def point_mse(index: int):
    """The MSE of the mean head's channel, named `point_mse`; its validation value (`val_point_mse`)
    is what stops a run with a mean head (`stop_monitor`)."""
    return _point_metric(index, "point_mse", tf.square)


def stop_monitor(levels) -> str:
    """What early stopping and the plateau decay watch: the validation loss, or with a mean head
    (`--quantiles` without 0.5) the mean head's validation MSE: the mean alone trains the LSTM
    there (LevelFeatures), and it stops where the same run without quantiles stops (watching its
    val_loss, the same number), not where the levels' pinball loss flattens."""
    return "val_point_mse" if mean_head(levels) else "val_loss"
