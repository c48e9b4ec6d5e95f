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


class MeanTrunkDense(tf.keras.layers.Dense):
    """The output Dense of a quantile model with a mean head: the mean channel's gradient trains
    the LSTM below it, the levels' channels do not (they see the features through a stop-gradient).

    Units are laid out [..., channels] as the head's reshape reads them: unit u belongs to channel
    u mod `channels`, and the last channel is the mean. Each channel's own weights train as in a
    plain Dense (a Dense's output units have independent weights); only the features' gradient is
    the mean's alone, so the network learns what the run without quantiles learns, and the levels
    are linear maps of those features (plus the linear skip and the anchor). Why: with a shared
    gradient the pinball loss pulled the features its way and the mean head's validation MSE on
    hourly city temperatures was 1.74x the point run's (BENCHMARKS.md, "mean trunk")."""

    def __init__(self, units: int, channels: int, **kwargs) -> None:
        super().__init__(units, **kwargs)
        self.channels = int(channels)

    def call(self, inputs):
        full = super().call(inputs)
        levels_only = super().call(tf.stop_gradient(inputs))
        mean = tf.cast(tf.range(self.units) % self.channels == self.channels - 1, full.dtype)
        return mean * full + (1.0 - mean) * levels_only

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


class PinballLoss(tf.keras.losses.Loss):
    """Mean pinball loss: y_true [..., T] against y_pred [..., T, Q] at `levels` (Q,).

    With a mean head (0.5 not among the levels), y_pred has a (Q+1)-th channel, the point
    forecast, trained with the batch's root mean squared error: the levels learn the spread, the
    mean head the forecast an RMSE judges (the median is not the RMSE-optimal forecast of a
    skewed target). The root, not the square: the pinball loss grows with the errors, their square
    with the errors squared, so on a target forecast to a few hundredths of its scale (hourly
    temperatures) a squared term weighed ~1/50 of the levels in the gradients and in early
    stopping, and the mean head stopped half-trained (test RMSE 1.6x the run without quantiles).
    Each element adds its squared error / (2 x the batch's RMSE, held constant): the loss adds
    RMSE / 2, its gradient is the RMSE's, and both terms scale with the target alike."""

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
        sq = tf.square(y - y_pred[..., q])
        rmse = tf.stop_gradient(tf.sqrt(tf.reduce_mean(sq)))
        return loss + sq / (2.0 * rmse + 1e-12)

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}


def point_mae(index: int):
    """A Keras metric: the MAE of one level (the point forecast), named `mae` like the point models'."""

    def mae(y_true, y_pred):
        return tf.reduce_mean(tf.abs(tf.cast(y_true, y_pred.dtype) - y_pred[..., index]), axis=-1)

    return mae


def point_mse(index: int):
    """A Keras metric: the MSE of one channel (the mean head), named `point_mse`; its validation
    value (`val_point_mse`) is what stops a run with a mean head (`stop_monitor`)."""

    def point_mse(y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.cast(y_true, y_pred.dtype) - y_pred[..., index]), axis=-1)

    return point_mse


def stop_monitor(levels) -> str:
    """What early stopping and the plateau decay watch: the validation loss, or with a mean head
    (`--quantiles` without 0.5) the mean head's validation MSE. The mean alone trains the LSTM
    there (MeanTrunkDense), so its error is what the epochs improve; the pinball loss of the
    levels, which ride on the features, flattened sooner and stopped city temperatures' runs at
    epoch 55 where the point run improved to epoch 90 (BENCHMARKS.md, "mean trunk")."""
    return "val_point_mse" if mean_head(levels) else "val_loss"
