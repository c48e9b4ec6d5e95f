"""Decode preprocessing's window blocks (keys in contract/records.py) with tf.data ops.

One record holds a block of up to `block_size` windows as raw little-endian bytes, so
one `parse_single_example` + `decode_raw` per record decodes hundreds of windows at
once; that per-record op is already vectorized over the block.
"""

from __future__ import annotations

from contract.logs import import_tensorflow
from contract.manifest import Manifest
from contract.records import BYTES_KEYS, COUNT, SERIES, TIME, X, Y

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)

_SPEC = {**{k: tf.io.FixedLenFeature([], tf.string) for k in BYTES_KEYS}, COUNT: tf.io.FixedLenFeature([], tf.int64)}


def block_decoder(manifest: Manifest, *, with_ids: bool = False):
    """A function: serialized record -> dict of [n, ...] tensors (one block of windows)."""
    look_back, n_features = manifest.x_shape
    target_rows, n_targets = manifest.y_shape
    squeeze = not manifest.window.target_sequence

    def decode(serialized):
        ex = tf.io.parse_single_example(serialized, _SPEC)
        x = tf.reshape(tf.io.decode_raw(ex[X], tf.float32, little_endian=True), [-1, look_back, n_features])
        y = tf.reshape(tf.io.decode_raw(ex[Y], tf.float32, little_endian=True), [-1, target_rows, n_targets])
        if squeeze:
            y = y[:, 0, :]
        out = {X: x, Y: y}  # decoded windows keep the record's key names
        if with_ids:
            out[TIME] = tf.io.decode_raw(ex[TIME], tf.int64, little_endian=True)
            out[SERIES] = tf.io.decode_raw(ex[SERIES], tf.int64, little_endian=True)
        return out

    return decode


def compression_type(manifest: Manifest) -> str:
    return "GZIP" if manifest.encoding.compression == "gzip" else ""
