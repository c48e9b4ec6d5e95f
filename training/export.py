"""Export a SavedModel that takes raw, unscaled windows and returns predictions in original units.

The scaling statistics from metadata.json are baked into the serving graph, so a user
never re-implements the preprocessing scaler (a classic source of silently wrong
predictions) and the model can be served as is.
"""

from __future__ import annotations

import json
import posixpath

import numpy as np

from contract import calendar
from contract.logs import import_tensorflow
from contract.manifest import EXPORT_EVALUATION_NAME, EXPORT_MANIFEST_NAME, Manifest
from contract.series_scaling import SERIES_SCALING_NAME, SeriesScaling
from evaluation.quantiles import point_index

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)

SIGNATURE = "serving_default"


class TensorOps:
    """contract.calendar's `ops` for int64 tensors, so serving computes the job's exact values."""

    sin = staticmethod(tf.sin)
    cos = staticmethod(tf.cos)

    @staticmethod
    def to_float(a):
        return tf.cast(a, tf.float64)


def calendar_features(time, parts) -> tf.Tensor:
    """int64 ns ticks [batch, L] -> float32 [batch, L, 2·len(parts)] calendar columns."""
    return tf.cast(tf.stack(calendar.values(time, parts, TensorOps), axis=-1), tf.float32)


def scaling_arrays(manifest: Manifest, names) -> tuple[np.ndarray, np.ndarray]:
    """The global (center, scale) of `names` (per-series datasets: see window_scaling)."""
    cols = [manifest.column(n) for n in names]
    return (np.array([c.center for c in cols], np.float32), np.array([c.scale for c in cols], np.float32))


def load_series_scaling(manifest: Manifest, data_dir: str) -> SeriesScaling | None:
    """The per-series table of a `--scale-by series` dataset (None for global scaling)."""
    if manifest.scale_by != "series":
        return None
    with tf.io.gfile.GFile(posixpath.join(data_dir, SERIES_SCALING_NAME)) as f:
        return SeriesScaling.from_json(f.read())


def window_scaling(manifest: Manifest, names, like: np.ndarray, sids=None, series: SeriesScaling | None = None):
    """(center, scale) of `names` to broadcast against windows' values `like` ([W, ..., k]):
    [k] globally, [W, 1, ..., k] per series (each window's series, by its sid)."""
    if series is None:
        return scaling_arrays(manifest, names)
    center, scale = series.gather(series.rows_of_ids(sids), names)
    shape = (len(center), *([1] * (like.ndim - 2)), len(names))
    return center.reshape(shape), scale.reshape(shape)


class RawServing(tf.Module):
    """raw window [batch, L, F] -> {'predictions': original units (or class probabilities)}.

    With calendar features the signature also takes `time` [batch, L] (int64 ns since the
    epoch, the rows' timestamps) and `x` holds only the file's features: the calendar
    columns are computed in the graph, as the Beam job computed them. With per-series
    scaling it also takes `series` [batch] (each window's series key) and scales and
    unscales with that series' statistics (unknown series: the global ones).
    """

    def __init__(self, model: tf.keras.Model, manifest: Manifest, series: SeriesScaling | None = None,
                 quantiles: tuple[float, ...] = ()) -> None:
        super().__init__()
        self.model = model
        self.levels = tuple(float(q) for q in quantiles)
        self.point = point_index(self.levels) if self.levels else None
        look_back, _ = manifest.x_shape
        self.regression = manifest.task == "regression"
        self.calendar = manifest.calendar
        self.per_series = series is not None
        if series is None:
            (fc, fs), (tc, ts) = scaling_arrays(manifest, manifest.features), scaling_arrays(manifest, manifest.targets)
            fc, fs, tc, ts = fc[None], fs[None], tc[None], ts[None]
        else:
            (fc, fs), (tc, ts) = series.table(manifest.features), series.table(manifest.targets)
            self.series_rows = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(series.names), tf.string), tf.range(len(series.names), dtype=tf.int64)),
                default_value=len(series.names))
        # [rows, k] tables: one row (global) or one per series plus the global fallback
        self.x_center, self.x_scale = tf.constant(fc, tf.float32), tf.constant(fs, tf.float32)
        self.y_center, self.y_scale = tf.constant(tc, tf.float32), tf.constant(ts, tf.float32)
        specs = [tf.TensorSpec([None, look_back, len(manifest.file_features)], tf.float32, name="x")]
        if self.calendar:
            specs.append(tf.TensorSpec([None, look_back], tf.int64, name="time"))
        if self.per_series:
            specs.append(tf.TensorSpec([None], tf.string, name="series"))
        self.serve = tf.function(self._serve, input_signature=specs)

    def _serve(self, x, *rest):
        rest = list(rest)
        if self.calendar:
            x = tf.concat([x, calendar_features(rest.pop(0), self.calendar)], axis=-1)
        row = self.series_rows.lookup(rest.pop(0)) if self.per_series else tf.zeros(tf.shape(x)[:1], tf.int64)
        xc, xs = tf.gather(self.x_center, row)[:, None, :], tf.gather(self.x_scale, row)[:, None, :]
        y = self.model((x - xc) / xs, training=False)
        if self.regression:
            yc, ys = tf.gather(self.y_center, row), tf.gather(self.y_scale, row)
            rows = len(y.shape) - (3 if self.levels else 2)  # a target sequence's step axis
            if rows:
                yc, ys = yc[:, None, :], ys[:, None, :]
            if self.levels:  # [batch, (H,) targets, Q] in original units; the point forecast is the 0.5
                q = y * ys[..., None] + yc[..., None]  # level or the mean head's channel after the levels
                return {"predictions": q[..., self.point], "quantiles": q[..., :len(self.levels)]}
            y = y * ys + yc
        return {"predictions": y}


def export(model: tf.keras.Model, manifest: Manifest, export_dir: str, *, config_json: str | None = None,
           series: SeriesScaling | None = None, evaluation: dict | None = None,
           quantiles: tuple[float, ...] = ()) -> str:
    """Write the SavedModel (and the resolved config beside it); returns export_dir.

    `evaluation` (evaluation.report.to_dict: the season and the training MASE scale) lets
    seqscale-predict's score mode report as eval.json does without the training data."""
    module = RawServing(model, manifest, series, quantiles)
    tf.saved_model.save(module, export_dir, signatures={SIGNATURE: module.serve})
    if config_json is not None:
        with tf.io.gfile.GFile(posixpath.join(export_dir, "seqscale_config.json"), "w") as f:
            f.write(config_json)
    with tf.io.gfile.GFile(posixpath.join(export_dir, EXPORT_MANIFEST_NAME), "w") as f:
        f.write(manifest.to_json())
    if evaluation is not None or quantiles:  # quantiles: the levels the signature's `quantiles` holds
        with tf.io.gfile.GFile(posixpath.join(export_dir, EXPORT_EVALUATION_NAME), "w") as f:
            f.write(json.dumps({**(evaluation or {}), "quantiles": list(quantiles)}, indent=2))
    if series is not None:  # seqscale-predict tells the series the model knows from the ones it does not
        with tf.io.gfile.GFile(posixpath.join(export_dir, SERIES_SCALING_NAME), "w") as f:
            f.write(series.to_json())
    return export_dir


def load_predictor(export_dir: str, output: str | None = "predictions"):
    """A callable (raw windows[, int64 ns times][, series keys]) -> the signature's `output` in
    original units: "predictions", or "quantiles" [batch, (H,) targets, Q] of a quantile export;
    None: a dict of every output."""
    loaded = tf.saved_model.load(export_dir)
    fn = loaded.signatures[SIGNATURE]
    if output is not None and output not in fn.structured_outputs:
        raise ValueError(f"{export_dir}: the export has no {output!r} output (it has {sorted(fn.structured_outputs)})")

    def predict(x, time=None, series=None):
        inputs = {"x": tf.constant(x, tf.float32)}
        if time is not None:
            inputs["time"] = tf.constant(time, tf.int64)
        if series is not None:
            inputs["series"] = tf.constant([str(s) for s in series], tf.string)
        out = {k: v.numpy() for k, v in fn(**inputs).items()}
        return out if output is None else out[output]

    return predict


def read_export_manifest(export_dir: str) -> dict:
    with tf.io.gfile.GFile(posixpath.join(export_dir, EXPORT_MANIFEST_NAME)) as f:
        return json.load(f)
