"""Record keys, the encoding name, split names and series ids: spelled once, for both stages.

A record is a tf.train.Example holding a block of up to `block_size` windows as raw
little-endian bytes (see preprocessing/records.py for the writer, training/records.py
for the tf.data reader):
    x:   float32 [n, look_back, n_features]   (scaled inputs)
    y:   float32 [n, target_rows, n_targets]  (scaled for regression)
    t:   int64 [n]  time of the last input row of each window
    sid: int64 [n]  63-bit hash of the series key (see series_id)
    n:   int64 scalar, windows in this record
"""

from __future__ import annotations

import hashlib

ENCODING = "window_block_v1"

X, Y, TIME, SERIES, COUNT = "x", "y", "t", "sid", "n"
BYTES_KEYS = (X, Y, TIME, SERIES)
RECORD_KEYS = (*BYTES_KEYS, COUNT)
DTYPES = {X: "<f4", Y: "<f4", TIME: "<i8", SERIES: "<i8"}

SPLITS = ("train", "val", "test")
BACKTEST = "backtest"  # --backtest-every: windows at forecast origins over the test range
WINDOW_SETS = (*SPLITS, BACKTEST)  # every set of windows that gets shard files
TRAIN, VAL, TEST = 0, 1, 2  # split ids grow with time


def series_id(key: str) -> int:
    """Stable 63-bit id of a series key (same on every worker and run)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") >> 1


def shard_name(split: str, index: int, count: int, compression: str) -> str:
    """`{split}-SSSSS-of-NNNNN.tfrecord[.gz]`, the names the manifest lists."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord" + (".gz" if compression == "gzip" else "")
