"""Decode preprocessing's window blocks (see preprocessing/records.py) with tf.data ops.

One record holds a block of up to `block_size` windows as raw little-endian bytes, so
one `parse_single_example` + `decode_raw` per record decodes hundreds of windows at
once; that per-record op is already vectorized over the block.
"""

from __future__ import annotations

import tensorflow as tf

from preprocessing.manifest import Manifest

_SPEC = {
    "x": tf.io.FixedLenFeature([], tf.string),
    "y": tf.io.FixedLenFeature([], tf.string),
    "t": tf.io.FixedLenFeature([], tf.string),
    "sid": tf.io.FixedLenFeature([], tf.string),
    "n": tf.io.FixedLenFeature([], tf.int64),
}


def block_decoder(manifest: Manifest, *, with_ids: bool = False):
    """A function: serialized record -> dict of [n, ...] tensors (one block of windows)."""
    look_back, n_features = manifest.encoding["x_shape"]
    target_rows, n_targets = manifest.encoding["y_shape"]
    squeeze = not manifest.target_sequence

    def decode(serialized):
        ex = tf.io.parse_single_example(serialized, _SPEC)
        x = tf.reshape(tf.io.decode_raw(ex["x"], tf.float32, little_endian=True), [-1, look_back, n_features])
        y = tf.reshape(tf.io.decode_raw(ex["y"], tf.float32, little_endian=True), [-1, target_rows, n_targets])
        if squeeze:
            y = y[:, 0, :]
        out = {"x": x, "y": y}
        if with_ids:
            out["t"] = tf.io.decode_raw(ex["t"], tf.int64, little_endian=True)
            out["sid"] = tf.io.decode_raw(ex["sid"], tf.int64, little_endian=True)
        return out

    return decode


def compression_type(manifest: Manifest) -> str:
    return "GZIP" if manifest.encoding["compression"] == "gzip" else ""
