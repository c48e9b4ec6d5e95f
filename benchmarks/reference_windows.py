"""Hand-written single-process reference: numpy + a TFRecord writer, no Beam.

Produces the same windows as the Beam job for one regular series in one CSV or Parquet file (global
stats on the first 70% of the time range, standard scaling, windows that never cross
a split or a gap, shuffled, dealt to 16/8/8 shards in blocks of 256, sha256 per
shard), so `make bench` can compare wall time and memory in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from preprocessing.records import encode_block_parts, frame_parts


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--time-column", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--look-back", type=int, default=60)
    p.add_argument("--horizon", type=int, default=1)
    a = p.parse_args()
    feats = a.features.split(",")
    L, H = a.look_back, a.horizon

    table = pq.read_table(a.input) if a.input.endswith(".parquet") else pacsv.read_csv(a.input)
    t = pc.cast(table.column(a.time_column), pa.timestamp("ns")).cast(pa.int64()).to_numpy()
    v = np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in feats])
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    t_min, t_max = int(t[0]), int(t[-1])
    val_start = t_min + int(np.ceil((t_max - t_min) * 0.7))
    test_start = t_min + int(np.ceil((t_max - t_min) * 0.85))
    train = t < val_start
    mean, std = v[train].mean(axis=0), v[train].std(axis=0)
    x = ((v - mean) / std).astype(np.float32)
    y = x[:, [feats.index(a.target)]]
    d = np.diff(t)
    vals, counts = np.unique(d[d > 0], return_counts=True)
    max_gap = int(vals[np.argmax(counts)] * 1.5)
    split = np.searchsorted([val_start, test_start], t, side="right")
    brk = np.flatnonzero((d > max_gap) | (np.diff(split) != 0)) + 1
    rng = np.random.default_rng(0)
    os.makedirs(a.output, exist_ok=True)
    counts_out = {}
    for s_id, name, shards in ((0, "train", 16), (1, "val", 8), (2, "test", 8)):
        starts = [np.arange(b0, b1 - L - H + 1) for b0, b1 in zip(np.r_[0, brk], np.r_[brk, len(t)], strict=True)
                  if split[b0] == s_id and b1 - b0 >= L + H]
        starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        starts = starts[rng.permutation(len(starts))]
        counts_out[name] = len(starts)
        for j, part in enumerate(np.array_split(starts, shards)):
            path = os.path.join(a.output, f"{name}-{j:05d}-of-{shards:05d}.tfrecord")
            sha = hashlib.sha256()
            with open(path, "wb") as f:
                for i in range(0, len(part), 256):
                    s = part[i : i + 256]
                    xb = x[s[:, None] + np.arange(L)]
                    yb = y[s + L - 1 + H][:, None, :]
                    last = s + L - 1
                    for piece in frame_parts(encode_block_parts(xb, yb, t[last], np.zeros(len(s), np.int64))):
                        f.write(piece)
                        sha.update(piece)
    with open(os.path.join(a.output, "counts.json"), "w") as f:
        json.dump(counts_out, f)


if __name__ == "__main__":
    main()
