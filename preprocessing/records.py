"""The record encoding: blocks of windows as raw little-endian bytes in tf.train.Example.

Why blocks of raw bytes (measured, see BENCHMARKS.md): one Example with a float_list
per window costs ~200 us to build in Python and reads at ~160k windows/s; raw float32
bytes with 256 windows per record cost ~7 us per window to write and read at ~300k
windows/s with one `decode_raw`. The Example proto and TFRecord framing are written by
hand here so that Beam workers never import TensorFlow (8 s and ~1 GB each); a test
parses them back with TensorFlow's own parser.

Each record is an Example with features:
    x:   bytes, float32 [n, look_back, n_features]   (scaled inputs)
    y:   bytes, float32 [n, target_rows, n_targets]  (scaled for regression)
    t:   bytes, int64 [n]  time of the last input row of each window
    sid: bytes, int64 [n]  63-bit hash of the series key (see series_id)
    n:   int64            windows in this record
"""

from __future__ import annotations

import hashlib
import struct

import google_crc32c
import numpy as np

ENCODING = "window_block_v1"
FEATURES = ("x", "y", "t", "sid")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _feature_entry(key: str, feature: bytes) -> bytes:
    # map<string, Feature> entry: key = field 1, value = field 2
    return _field(1, _field(1, key.encode()) + _field(2, feature))


def _bytes_feature(data: bytes) -> bytes:
    return _field(1, _field(1, data))  # Feature.bytes_list(1) -> BytesList.value(1)


def _int64_feature(value: int) -> bytes:
    packed = _varint(value & 0xFFFFFFFFFFFFFFFF)
    return _field(3, _field(1, packed))  # Feature.int64_list(3) -> Int64List.value(1), packed


def encode_block(x: np.ndarray, y: np.ndarray, t: np.ndarray, sid: np.ndarray) -> bytes:
    """One serialized tf.train.Example holding a block of windows."""
    n = len(x)
    entries = (
        _feature_entry("n", _int64_feature(n))
        + _feature_entry("sid", _bytes_feature(np.ascontiguousarray(sid, "<i8").tobytes()))
        + _feature_entry("t", _bytes_feature(np.ascontiguousarray(t, "<i8").tobytes()))
        + _feature_entry("x", _bytes_feature(np.ascontiguousarray(x, "<f4").tobytes()))
        + _feature_entry("y", _bytes_feature(np.ascontiguousarray(y, "<f4").tobytes()))
    )
    return _field(1, entries)  # Example.features(1) -> Features.feature(1) map entries


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """TFRecord framing: length, masked crc32c of length, data, masked crc32c of data."""
    header = struct.pack("<Q", len(record))
    return header + struct.pack("<I", _masked_crc(header)) + record + struct.pack("<I", _masked_crc(record))


def iter_frames(data: bytes):
    """Records of an uncompressed TFRecord byte string, checking both CRCs."""
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"truncated TFRecord header at byte {pos}")
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if crc != _masked_crc(header):
            raise ValueError(f"corrupt TFRecord length at byte {pos}")
        body = data[pos + 12 : pos + 12 + length]
        if len(body) != length or pos + 16 + length > len(data):
            raise ValueError(f"truncated TFRecord at byte {pos}")
        (crc,) = struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])
        if crc != _masked_crc(body):
            raise ValueError(f"corrupt TFRecord data at byte {pos}")
        yield body
        pos += 16 + length


def series_id(key: str) -> int:
    """Stable 63-bit id of a series key (same on every worker and run)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") >> 1
