"""Benchmark: record encodings for windows, measured in the same run.

For W windows of 60 x 7 float32 (plus a scalar target) written to TFRecord files:
write cost per window, bytes on disk per window, and tf.data read throughput of
  float_list  one tf.train.Example per window, float_list features (the common recipe;
              read batch-then-parse_example)
  raw_1       one Example per window, raw float32 bytes (batch, parse_example, decode_raw)
  block_256   seqscale's encoding: 256 windows per Example as raw bytes (decode_raw per record)
  block_gzip  the same, GZIP-compressed
Ratios are against float_list.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import tensorflow as tf

from contract.records import series_id
from contract.window import WindowSpec
from preprocessing import shards

L, F = 60, 7


def write_float_list(path, x, y):
    start = time.perf_counter()
    with tf.io.TFRecordWriter(path) as w:
        for i in range(len(x)):
            ex = tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=x[i].ravel())),
                "y": tf.train.Feature(float_list=tf.train.FloatList(value=y[i].ravel())),
            }))
            w.write(ex.SerializeToString())
    return time.perf_counter() - start


def write_blocks(path, rows, windows, block, compression):
    """Windows x[i] = rows[i:i+L], target rows[i+L] (the same windows as write_float_list)."""
    t = np.arange(len(rows), dtype=np.int64)
    sid = np.full(len(rows), series_id("s"), np.int64)
    # shuffled, as in real shards: a block of consecutive windows would repeat the same
    # rows 256 times and flatter GZIP
    starts = np.random.default_rng(1).permutation(windows)
    start = time.perf_counter()
    recs = shards.encode_windows(rows, rows[:, :1], t, sid, starts, WindowSpec(look_back=L, horizon=1),
                                 block_size=block)
    shards.write_shard(path, recs, compression=compression)
    return time.perf_counter() - start


def read_float_list(path):
    spec = {"x": tf.io.FixedLenFeature([L * F], tf.float32), "y": tf.io.FixedLenFeature([1], tf.float32)}
    return (tf.data.TFRecordDataset(path).batch(256).map(lambda r: tf.io.parse_example(r, spec),
                                                          num_parallel_calls=tf.data.AUTOTUNE)
            .map(lambda e: (tf.reshape(e["x"], [-1, L, F]), e["y"])))


def read_raw_1(path):
    spec = {"x": tf.io.FixedLenFeature([], tf.string), "y": tf.io.FixedLenFeature([], tf.string)}

    def dec(e):
        return tf.reshape(tf.io.decode_raw(e["x"], tf.float32), [-1, L, F]), tf.io.decode_raw(e["y"], tf.float32)
    return (tf.data.TFRecordDataset(path).batch(256)
            .map(lambda r: dec(tf.io.parse_example(r, spec)), num_parallel_calls=tf.data.AUTOTUNE))


def read_blocks(path, compression):
    spec = {"x": tf.io.FixedLenFeature([], tf.string), "y": tf.io.FixedLenFeature([], tf.string)}

    def dec(r):
        e = tf.io.parse_single_example(r, spec)
        return tf.reshape(tf.io.decode_raw(e["x"], tf.float32), [-1, L, F]), tf.io.decode_raw(e["y"], tf.float32)
    ds = tf.data.TFRecordDataset(path, compression_type="GZIP" if compression == "gzip" else "")
    return ds.map(dec, num_parallel_calls=tf.data.AUTOTUNE).unbatch().batch(256)


def throughput(ds) -> float:
    for _ in ds.take(1):
        pass
    best = 0.0
    for _ in range(2):
        start, n = time.perf_counter(), 0
        for xb, _ in ds:
            n += int(xb.shape[0])
        best = max(best, n / (time.perf_counter() - start))
    return best


def main(windows: int = 100_000) -> int:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(windows + L, F)).astype(np.float32)
    x = np.lib.stride_tricks.sliding_window_view(rows, (L, F))[:windows, 0]
    y = rows[L : L + windows, :1]
    d = tempfile.mkdtemp(prefix="seqscale-enc-")
    res = {}
    p = os.path.join(d, "fl.tfrecord")
    res["float_list"] = (write_float_list(p, x, y), os.path.getsize(p), throughput(read_float_list(p)))
    p = os.path.join(d, "raw1.tfrecord")
    res["raw_1"] = (write_blocks(p, rows, windows, 1, "none"), os.path.getsize(p), throughput(read_raw_1(p)))
    p = os.path.join(d, "b256.tfrecord")
    res["block_256"] = (write_blocks(p, rows, windows, 256, "none"), os.path.getsize(p), throughput(read_blocks(p, "none")))
    p = os.path.join(d, "b256.tfrecord.gz")
    res["block_gzip"] = (write_blocks(p, rows, windows, 256, "gzip"), os.path.getsize(p), throughput(read_blocks(p, "gzip")))
    shutil.rmtree(d, ignore_errors=True)
    base = res["float_list"]
    print(f"{windows:,} windows of {L}x{F} float32 (raw payload {L * F * 4 + 4} bytes)")
    print(f"{'encoding':<12}{'write us/win':>14}{'bytes/win':>11}{'read win/s':>12}{'read x float_list':>19}")
    for k, (w, size, tput) in res.items():
        print(f"{k:<12}{w / windows * 1e6:>14.1f}{size / windows:>11.0f}{tput:>12,.0f}{tput / base[2]:>19.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
