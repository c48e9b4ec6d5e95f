"""The floor for seqscale-predict's forecast mode: one process, pyarrow and numpy, the same SavedModel.

Reads the whole table, orders it by (series, time), takes each series' last L rows (a series
with fewer rows, or a gap larger than the export's tolerance in them, is skipped), calls the
serving signature in batches, and writes the same long-format Parquet. No checks, no
staging, no Beam: what a careful hand-written script costs.

    python -m benchmarks.predict_reference --export E --input T.parquet --output OUT
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contract.manifest import Manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--export", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--batch-size", type=int, default=1024)
    args = p.parse_args(argv)
    with open(os.path.join(args.export, "seqscale_manifest.json")) as f:
        text = f.read()
    m, man = Manifest.from_json(text), json.loads(text)
    L, features = m.window.look_back, list(m.file_features)
    series_col, time_col = m.series_column, m.time_column
    table = pq.read_table(args.input, columns=[c for c in (series_col, time_col, *features) if c])
    t = table.column(time_col).cast(pa.int64()).to_numpy()
    if series_col:
        enc = table.column(series_col).combine_chunks().dictionary_encode()
        codes, names = enc.indices.to_numpy(), np.array(enc.dictionary.to_pylist(), dtype=object)
    else:
        codes, names = np.zeros(len(t), np.int32), np.array([""], dtype=object)
    order = np.lexsort((t, codes))
    codes, t = codes[order], t[order]
    x = np.column_stack([table.column(c).to_numpy()[order] for c in features]).astype(np.float32)
    ends = np.r_[np.flatnonzero(np.diff(codes)) + 1, len(codes)]
    begins = np.r_[0, ends[:-1]]
    ok = (ends - begins) >= L
    ends = ends[ok]
    rows = ends[:, None] - L + np.arange(L)[None, :]
    ok = (np.diff(t[rows], axis=1) <= man["max_gap"]).all(axis=1)
    rows = rows[ok]
    import tensorflow as tf

    serve = tf.saved_model.load(args.export).signatures["serving_default"]
    per_series, calendar = m.scale_by == "series", bool(m.calendar)
    keys = names[codes[rows[:, -1]]]
    preds = []
    for a in range(0, len(rows), args.batch_size):
        r = rows[a:a + args.batch_size]
        inputs = {"x": tf.constant(x[r])}
        if calendar:
            inputs["time"] = tf.constant(t[r])
        if per_series:
            inputs["series"] = tf.constant(keys[a:a + args.batch_size].astype(bytes))
        preds.append(serve(**inputs)["predictions"].numpy().reshape(len(r), -1))
    p = np.concatenate(preds) if preds else np.zeros((0, 1))
    origin = t[rows[:, -1]]
    os.makedirs(args.output, exist_ok=True)
    pq.write_table(pa.table({"series": pa.array(keys.astype(str)), "origin_time": origin,
                             "target_time": origin + man["window"]["horizon"] * man["step"], "forecast": p[:, 0]}),
                   os.path.join(args.output, "forecasts.parquet"))
    print(json.dumps({"forecasts": len(rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
