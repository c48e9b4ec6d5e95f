"""Export a SavedModel that takes raw, unscaled windows and returns predictions in original units.

The scaling statistics from metadata.json are baked into the serving graph, so a user
never re-implements the preprocessing scaler (a classic source of silently wrong
predictions) and the model can be served as is.
"""

from __future__ import annotations

import json
import posixpath

import numpy as np
import tensorflow as tf

from contract import calendar
from contract.manifest import Manifest

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
    cols = [manifest.column(n) for n in names]
    return (np.array([c.center for c in cols], np.float32), np.array([c.scale for c in cols], np.float32))


class RawServing(tf.Module):
    """raw window [batch, L, F] -> {'predictions': original units (or class probabilities)}.

    With calendar features the signature also takes `time` [batch, L] (int64 ns since the
    epoch, the rows' timestamps) and `x` holds only the file's features: the calendar
    columns are computed in the graph, as the Beam job computed them.
    """

    def __init__(self, model: tf.keras.Model, manifest: Manifest) -> None:
        super().__init__()
        self.model = model
        look_back, n_features = manifest.x_shape
        fc, fs = scaling_arrays(manifest, manifest.features)
        self.x_center = tf.constant(fc)
        self.x_scale = tf.constant(fs)
        self.regression = manifest.task == "regression"
        tc, ts = scaling_arrays(manifest, manifest.targets)
        self.y_center = tf.constant(tc)
        self.y_scale = tf.constant(ts)
        self.calendar = manifest.calendar
        x_spec = tf.TensorSpec([None, look_back, len(manifest.file_features)], tf.float32, name="x")
        if self.calendar:
            self.serve = tf.function(self._serve_calendar, input_signature=[
                x_spec, tf.TensorSpec([None, look_back], tf.int64, name="time")])
        else:
            self.serve = tf.function(self._serve, input_signature=[x_spec])

    def _serve_calendar(self, x, time):
        return self._serve(tf.concat([x, calendar_features(time, self.calendar)], axis=-1))

    def _serve(self, x):
        y = self.model((x - self.x_center) / self.x_scale, training=False)
        if self.regression:
            y = y * self.y_scale + self.y_center
        return {"predictions": y}


def export(model: tf.keras.Model, manifest: Manifest, export_dir: str, *, config_json: str | None = None) -> str:
    """Write the SavedModel (and the resolved config beside it); returns export_dir."""
    module = RawServing(model, manifest)
    tf.saved_model.save(module, export_dir, signatures={SIGNATURE: module.serve})
    if config_json is not None:
        with tf.io.gfile.GFile(posixpath.join(export_dir, "seqscale_config.json"), "w") as f:
            f.write(config_json)
    with tf.io.gfile.GFile(posixpath.join(export_dir, "seqscale_manifest.json"), "w") as f:
        f.write(manifest.to_json())
    return export_dir


def load_predictor(export_dir: str):
    """A callable (raw windows[, int64 ns times]) -> predictions in original units, from an export."""
    loaded = tf.saved_model.load(export_dir)
    fn = loaded.signatures[SIGNATURE]

    def predict(x, time=None):
        inputs = {"x": tf.constant(x, tf.float32)}
        if time is not None:
            inputs["time"] = tf.constant(time, tf.int64)
        return fn(**inputs)["predictions"].numpy()

    return predict


def read_export_manifest(export_dir: str) -> dict:
    with tf.io.gfile.GFile(posixpath.join(export_dir, "seqscale_manifest.json")) as f:
        return json.load(f)
