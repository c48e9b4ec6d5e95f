"""Writing records: blocks of windows as raw little-endian bytes in tf.train.Example.

Why blocks of raw bytes (measured, see BENCHMARKS.md): one Example with a float_list
per window costs ~200 us to build in Python and reads at ~160k windows/s; raw float32
bytes with 256 windows per record cost ~7 us per window to write and read at ~300k
windows/s with one `decode_raw`. The Example proto and TFRecord framing are written by
hand here so that Beam workers never import TensorFlow (8 s and ~1 GB each); a test
parses them back with TensorFlow's own parser. The keys and their layout are the
contract's (contract/records.py).
"""

from __future__ import annotations

import functools
import struct

import google_crc32c
import numpy as np

from contract.records import COUNT, DTYPES, SERIES, TIME, X, Y


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


def _hdr(number: int, length: int) -> bytes:
    """Tag and length of a length-delimited protobuf field (wire type 2)."""
    return _varint((number << 3) | 2) + _varint(length)


@functools.lru_cache(maxsize=1024)
def _bytes_prefix(key: str, n: int) -> bytes:
    """Everything of a Features map entry holding one `n`-byte BytesList value, up to the value.

    Cached: a shard's full records all have the same lengths, so the protobuf headers are
    built once per key and block size, not once per record.
    """
    k = key.encode()
    bytes_list = len(_hdr(1, n)) + n  # BytesList.value (1)
    feature = len(_hdr(1, bytes_list)) + bytes_list  # Feature.bytes_list (1)
    entry = len(_hdr(1, len(k))) + len(k) + len(_hdr(2, feature)) + feature  # key (1), value (2)
    return b"".join([_hdr(1, entry), _hdr(1, len(k)), k, _hdr(2, feature), _hdr(1, bytes_list), _hdr(1, n)])


def _bytes_entry(key: str, data) -> list:
    """Parts of one Features map entry holding a BytesList with one value."""
    return [_bytes_prefix(key, len(data)), data]


@functools.lru_cache(maxsize=1024)
def _int64_entry(key: str, value: int) -> bytes:
    k = key.encode()
    packed = _varint(value & 0xFFFFFFFFFFFFFFFF)
    int_list = len(_hdr(1, len(packed))) + len(packed)  # Int64List.value (1), packed
    feature = len(_hdr(3, int_list)) + int_list  # Feature.int64_list (3)
    entry = len(_hdr(1, len(k))) + len(k) + len(_hdr(2, feature)) + feature
    return b"".join([_hdr(1, entry), _hdr(1, len(k)), k, _hdr(2, feature), _hdr(3, int_list),
                     _hdr(1, len(packed)), packed])


def _raw(a: np.ndarray, dtype: str) -> np.ndarray:
    """The array's bytes in `dtype`, as a flat uint8 view of its memory when it already is that
    (no copy; `bytes.join` reads it through the buffer protocol)."""
    return np.ascontiguousarray(a, dtype).reshape(-1).view(np.uint8)


def encode_block_parts(x: np.ndarray, y: np.ndarray, t: np.ndarray, sid: np.ndarray) -> list:
    """The serialized Example as a list of byte strings and array views (joined once, by `frame`).

    Nested protobuf lengths are computed up front so the window payload (hundreds of
    KB per record) is copied once instead of once per nesting level; the payload parts are
    views of the arrays, so that one copy is the join.
    """
    parts = [
        _int64_entry(COUNT, len(x)),
        *_bytes_entry(SERIES, _raw(sid, DTYPES[SERIES])),
        *_bytes_entry(TIME, _raw(t, DTYPES[TIME])),
        *_bytes_entry(X, _raw(x, DTYPES[X])),
        *_bytes_entry(Y, _raw(y, DTYPES[Y])),
    ]
    return [_hdr(1, sum(len(p) for p in parts)), *parts]  # Example.features (1)


def encode_block(x: np.ndarray, y: np.ndarray, t: np.ndarray, sid: np.ndarray) -> bytes:
    """One serialized tf.train.Example holding a block of windows."""
    return b"".join(encode_block_parts(x, y, t, sid))


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    return _mask(google_crc32c.value(data))


def frame_parts(record) -> tuple:
    """TFRecord framing as pieces: (length and its masked crc32c, *the record's parts, masked crc32c
    of the data), for `writelines`.

    `record` is bytes or a list of byte strings and uint8 array views (as from
    encode_block_parts). The parts are not joined: the crc32c is extended over them (it
    reads bytes and arrays, ~26 GB/s) and the writer takes them as they are, so the window
    payload is not copied again between the gather and the file.
    """
    parts = (record,) if isinstance(record, bytes) else tuple(record)
    crc = 0
    for p in parts:
        crc = google_crc32c.extend(crc, p)
    header = struct.pack("<Q", sum(len(p) for p in parts))
    return (header + struct.pack("<I", _masked_crc(header)), *parts, struct.pack("<I", _mask(crc)))


def frame(record) -> bytes:
    """TFRecord framing: length, masked crc32c of length, data, masked crc32c of data.

    `record` is bytes or a list of byte strings (as from encode_block_parts).
    """
    return b"".join(frame_parts(record))


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
