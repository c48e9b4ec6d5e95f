"""The hand-written Example/TFRecord encoding, parsed by TensorFlow's own readers."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest
import tensorflow as tf

from contract.records import series_id
from preprocessing.records import encode_block, encode_block_parts, frame, frame_parts, iter_frames


def test_block_parses_with_tensorflow_and_tfrecord_framing_is_valid(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5, 3)).astype(np.float32)
    y = rng.normal(size=(7, 1, 2)).astype(np.float32)
    t = np.arange(7, dtype=np.int64) * 10**12
    sid = np.full(7, series_id("a"), dtype=np.int64)
    path = tmp_path / "r.tfrecord"
    path.write_bytes(frame(encode_block(x, y, t, sid)) + frame(encode_block(x[:2], y[:2], t[:2], sid[:2])))
    recs = list(tf.data.TFRecordDataset(str(path)))  # TF checks both CRCs
    assert len(recs) == 2
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("x", "y", "t", "sid")}
    spec["n"] = tf.io.FixedLenFeature([], tf.int64)
    ex = tf.io.parse_single_example(recs[0], spec)
    assert int(ex["n"]) == 7
    np.testing.assert_array_equal(tf.io.decode_raw(ex["x"], tf.float32).numpy().reshape(7, 5, 3), x)
    np.testing.assert_array_equal(tf.io.decode_raw(ex["y"], tf.float32).numpy().reshape(7, 1, 2), y)
    np.testing.assert_array_equal(tf.io.decode_raw(ex["t"], tf.int64).numpy(), t)
    np.testing.assert_array_equal(tf.io.decode_raw(ex["sid"], tf.int64).numpy(), sid)
    # the same bytes as TensorFlow's own proto serialization
    proto = tf.train.Example.FromString(recs[1].numpy())
    assert proto.features.feature["n"].int64_list.value == [2]


def test_any_layout_and_dtype_encodes_as_the_contract_bytes_and_an_empty_block_too(tmp_path):
    """Payloads are views of the arrays when they already are the contract's dtype, converted
    otherwise: a Fortran-ordered float64 block, a strided target, int32 times and an empty block
    all read back exactly; the pieces of `frame_parts` frame the joined record with valid CRCs."""
    rng = np.random.default_rng(1)
    x = np.asfortranarray(rng.normal(size=(4, 3, 2)))  # float64, Fortran order
    y = rng.normal(size=(4, 1, 4)).astype(np.float32)[:, :, ::2]  # not contiguous
    t = np.arange(4, dtype=np.int32)
    sid = np.arange(4, dtype=np.int64)
    parts = encode_block_parts(x, y, t, sid)
    # frame_parts extends its crc32c over the unjoined pieces; iter_frames checks it on the joined bytes
    assert list(iter_frames(b"".join(frame_parts(parts)))) == [encode_block(x, y, t, sid)]
    empty = encode_block(np.zeros((0, 3, 2), np.float32), np.zeros((0, 1, 2), np.float32), np.zeros(0, np.int64),
                         np.zeros(0, np.int64))
    path = tmp_path / "r.tfrecord"
    path.write_bytes(b"".join(frame_parts(parts)) + frame(empty))
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("x", "y", "t", "sid")}
    spec["n"] = tf.io.FixedLenFeature([], tf.int64)
    first, second = (tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(str(path)))
    np.testing.assert_array_equal(tf.io.decode_raw(first["x"], tf.float32).numpy().reshape(4, 3, 2),
                                  x.astype(np.float32))
    np.testing.assert_array_equal(tf.io.decode_raw(first["y"], tf.float32).numpy().reshape(4, 1, 2), y)
    np.testing.assert_array_equal(tf.io.decode_raw(first["t"], tf.int64).numpy(), t)
    assert int(second["n"]) == 0 and tf.io.decode_raw(second["x"], tf.float32).numpy().size == 0


def test_iter_frames_detects_corruption():
    data = frame(b"hello") + frame(b"world")
    assert list(iter_frames(data)) == [b"hello", b"world"]
    bad = bytearray(data)
    bad[14] ^= 1
    with pytest.raises(ValueError, match="corrupt"):
        list(iter_frames(bytes(bad)))
    with pytest.raises(ValueError, match="truncated"):
        list(iter_frames(data[:-3]))


def test_series_id_is_stable_and_63_bit():
    assert series_id("a") == series_id("a") != series_id("b")
    assert 0 <= series_id("x" * 100) < 2**63
