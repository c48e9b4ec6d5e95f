"""Benchmark: does the Beam job's cost follow the rows, or the series count and the table size?

Three tables, each measured against a reference run in the same invocation:
  (a) rows x1, x5, x10 of one series (the minute table repeated in time, --stride 10);
  (b) the same 2M generated rows as 1, 100, 10,000 and 100,000 series (seeded; a look-back
      that fits the shortest series);
  (c) the trainer's read throughput (windows/s) and steps/s on the 1-series and the
      10,000-series outputs of (b).
For every job: wall time, windows per second, peak RSS of the process tree, staged bytes,
units made, unit loads per shard writer, windows per record, and the ratio to the
reference run (x1, or 1 series). Run: `python -m benchmarks.bench_scale [--only rows|series|read]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np

from benchmarks.measure import run_measured, scratch

SERIES_COUNTS = (1, 100, 10_000, 100_000)
SERIES_ROWS = 2_000_000
ROW_FACTORS = (1, 5, 10)
HOUR = np.timedelta64(1, "h")


def many_series_table(path: str, *, rows: int, series: int, seed: int = 0) -> str:
    """`rows` hourly rows as `series` equal series (2 columns: x and target y), sorted by series then time.

    The values are the same AR(1)-plus-season process whatever the series count, so only the
    shape of the table changes between runs.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    per = rows // series
    k = np.tile(np.arange(per), series)
    noise = rng.normal(size=rows).astype(np.float64)
    y = np.sin(2 * np.pi * k / 24) + 0.3 * noise
    x = np.cos(2 * np.pi * k / 24) + 0.1 * rng.normal(size=rows)
    t = np.datetime64("2020-01-01T00:00", "ns") + k * HOUR
    names = np.char.add("s", np.char.zfill(np.arange(series).astype(str), 6))
    table = pa.table({"ts": pa.array(t), "series": pa.DictionaryArray.from_arrays(
        np.repeat(np.arange(series, dtype=np.int32), per), pa.array(names)).cast(pa.string()),
        "x": x, "y": y})
    pq.write_table(table, path, row_group_size=256_000)
    return path


def repeated_minute_table(work: str, factor: int) -> str:
    """The UCI minute table repeated `factor` times in time (one series), as Parquet."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from demo.household_power import FEATURES, TIME, csv_path

    path = os.path.join(work, f"minutes-x{factor}.parquet")
    if os.path.exists(path):
        return path
    base = os.path.join(work, "minutes-x1.parquet")
    if not os.path.exists(base):
        types = {c: pa.string() for c in FEATURES}
        table = pacsv.read_csv(csv_path(), convert_options=pacsv.ConvertOptions(column_types=types,
                                                                                  include_columns=[TIME, *FEATURES]))
        cols = {TIME: table.column(TIME).cast(pa.timestamp("ns"))}
        for c in FEATURES:
            cols[c] = _to_float(table.column(c))
        pq.write_table(pa.table(cols), base, row_group_size=256_000)
    if factor == 1:
        return path
    table = pq.read_table(base)
    t = table.column(TIME).cast(pa.int64()).to_numpy()
    width = int(t.max() - t.min()) + 60_000_000_000
    with pq.ParquetWriter(path, table.schema) as w:
        for i in range(factor):
            shifted = pa.array((t + i * width).astype("datetime64[ns]"))
            w.write_table(table.set_column(0, TIME, shifted), row_group_size=256_000)
    return path


def _to_float(col):
    import pyarrow as pa
    import pyarrow.compute as pc

    # the UCI file marks missing values with '?': keep them as NaN (the job drops those rows)
    return pc.cast(pc.if_else(pc.equal(col, "?"), None, col), pa.float64())


def job_stats(out: str, log: str) -> dict:
    """Counts from metadata.json and the job's log: windows, units, loads per shard, windows per record."""
    with open(os.path.join(out, "metadata.json")) as f:
        m = json.load(f)
    windows = {s: sum(sh["windows"] for sh in m["shards"][s]) for s in m["shards"]}
    records = {}
    for split, shards in m["shards"].items():
        n = 0
        for sh in shards:
            n += _records(os.path.join(out, sh["file"]))
        records[split] = n
    loads = [int(v) for v in re.findall(r"from (\d+) units", log)]
    return {"windows": sum(windows.values()), "units": m["counts"]["units"],
            "loads_per_shard": max(loads) if loads else float("nan"),
            "windows_per_record": {s: windows[s] / records[s] for s in windows if records[s]}}


def _records(path: str) -> int:
    """Records in an uncompressed TFRecord file, from its length headers alone."""
    import struct

    n = 0
    with open(path, "rb") as f:
        while True:
            head = f.read(12)
            if len(head) < 12:
                return n
            (length,) = struct.unpack("<Q", head[:8])
            f.seek(length + 4, os.SEEK_CUR)
            n += 1


def preprocess(inp: str, out: str, *extra: str) -> tuple:
    py = sys.executable
    r = run_measured([py, "-m", "preprocessing", "--input", inp, "--output", out, *extra],
                     timeout=3600)
    if r.returncode != 0:
        print(r.output[-3000:])
        raise SystemExit(f"preprocessing {inp} failed with exit code {r.returncode}")
    return r, job_stats(out, r.output)


HEADER = (f"{'run':<22}{'wall s':>9}{'windows':>12}{'win/s':>10}{'x ref s/win':>13}{'RSS MB':>9}{'x ref':>7}"
          f"{'units':>8}{'loads/shard':>13}{'win/record (train/val/test)':>30}")


def row(name: str, r, st: dict, ref) -> str:
    wpr = st["windows_per_record"]
    per_window = (r.seconds / st["windows"]) / (ref[0].seconds / ref[1]["windows"]) if ref else 1.0
    rss = r.peak_rss_mb / ref[0].peak_rss_mb if ref else 1.0
    return (f"{name:<22}{r.seconds:>9.1f}{st['windows']:>12,}{st['windows'] / r.seconds:>10,.0f}{per_window:>13.2f}"
            f"{r.peak_rss_mb:>9.0f}{rss:>7.2f}{st['units']:>8,}{st['loads_per_shard']:>13}"
            f"{' / '.join(f'{wpr.get(s, 0):.0f}' for s in ('train', 'val', 'test')):>30}")


def series_table(work: str, counts=SERIES_COUNTS, keep: tuple[int, ...] = ()) -> dict[int, str]:
    """(b): the same 2M rows as 1, 100, 10,000 and 100,000 series."""
    print(f"(b) {SERIES_ROWS:,} generated rows as N series (2 columns, hourly, sorted by series)")
    # the job's fixed cost (interpreter, imports, pipeline start-up and stages), from the same job
    # on 1,000 rows: what remains per window is what follows the rows and the series count
    tiny = many_series_table(os.path.join(work, "tiny.parquet"), rows=1_000, series=1)
    fixed, _ = preprocess(tiny, os.path.join(work, "out-tiny"), "--time-column", "ts", "--series-column", "series",
                          "--features", "x,y", "--targets", "y", "--look-back", "24")
    shutil.rmtree(os.path.join(work, "out-tiny"), ignore_errors=True)
    print(f"the same job on 1,000 rows (its fixed cost): {fixed.seconds:.1f} s")
    print(HEADER + f"{'x ref above fixed':>19}")
    ref, outs = None, {}
    for n in counts:
        inp = many_series_table(os.path.join(work, f"series-{n}.parquet"), rows=SERIES_ROWS, series=n)
        look_back = min(24, SERIES_ROWS // n * 15 // 100 - 1)  # fits the validation range of every series
        out = os.path.join(work, f"out-series-{n}")
        os.sync()
        r, st = preprocess(inp, out, "--time-column", "ts", "--series-column", "series", "--features", "x,y", "--targets", "y",
                           "--look-back", str(look_back))
        ref = ref or (r, st)
        above = ((r.seconds - fixed.seconds) / st["windows"]) / ((ref[0].seconds - fixed.seconds) / ref[1]["windows"])
        print(row(f"{n:,} series (L={look_back})", r, st, ref) + f"{above:>19.2f}", flush=True)
        if n in keep:
            outs[n] = out
        else:
            shutil.rmtree(out, ignore_errors=True)
        os.remove(inp)
    return outs


def rows_table(work: str, factors=ROW_FACTORS) -> None:
    """(a): the minute table x1, x5, x10 in time, one series, look-back 60, --stride 10."""
    from demo.household_power import FEATURES, TIME

    print("(a) the minute table repeated in time (one series, 7 columns, look-back 60, --stride 10)")
    print(HEADER + f"{'B/input row':>13}")
    ref = None
    for f in factors:
        inp = repeated_minute_table(work, f)
        out = os.path.join(work, f"out-rows-{f}")
        os.sync()
        r, st = preprocess(inp, out, "--time-column", TIME, "--features", ",".join(FEATURES), "--targets", FEATURES[0], "--look-back", "60",
                           "--stride", "10", "--nan-policy", "drop")
        ref = ref or (r, st)
        with open(os.path.join(out, "metadata.json")) as fh:
            rows = json.load(fh)["counts"]["rows_read"]
        print(row(f"x{f} ({rows:,} rows)", r, st, ref) + f"{r.peak_rss_mb * 2**20 / rows:>13.0f}", flush=True)
        shutil.rmtree(out, ignore_errors=True)


def read_table(outs: dict[int, str], steps: int = 100, batch: int = 256) -> None:
    """(c): the trainer's reader (windows/s) and model.fit steps/s on the 1-series and many-series outputs."""
    import time

    import tensorflow as tf

    import training  # noqa: F401  (Keras 2)
    from benchmarks.bench_preprocess import read_throughput
    from training.config import ModelConfig
    from training.data import batched, load_manifest, read_windows
    from training.model import build_model

    print(f"(c) the trainer reading the outputs of (b): tf.data windows/s, and model.fit steps/s "
          f"(LSTM 128,64, batch {batch})")
    print(f"{'output':<22}{'windows/s':>12}{'x 1 series':>12}{'steps/s':>10}{'x 1 series':>12}")
    def steps_per_second(out: str) -> float:
        m = load_manifest(out)
        model = build_model(m, ModelConfig(), seed=0)
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="mse")
        ds = batched(read_windows(m, out, "train", shuffle=True, seed=0), batch, repeat=True)
        model.fit(ds, epochs=1, steps_per_epoch=10, verbose=0)
        start = time.perf_counter()
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
        return steps / (time.perf_counter() - start)

    # interleaved repeats, medians: single runs of either vary by a third on this shared machine
    reads: dict[int, list[float]] = {n: [] for n in outs}
    fits: dict[int, list[float]] = {n: [] for n in outs}
    for _ in range(5):
        for n, out in outs.items():
            reads[n].append(read_throughput(out, limit=600_000))
            fits[n].append(steps_per_second(out))
    ref = None
    for n in outs:
        rate, sps = float(np.median(reads[n])), float(np.median(fits[n]))
        ref = ref or (rate, sps)
        print(f"{f'{n:,} series':<22}{rate:>12,.0f}{rate / ref[0]:>12.2f}{sps:>10.1f}{sps / ref[1]:>12.2f}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work", default=None, help="scratch directory (default: a temp dir, removed)")
    p.add_argument("--only", choices=("rows", "series", "read"), help="run one table only")
    args = p.parse_args(argv)
    with scratch(args.work, "seqscale-scale-") as work:
        print(f"load average at start: {os.getloadavg()}")
        if args.only in (None, "series", "read"):
            counts = SERIES_COUNTS if args.only != "read" else (1, 10_000)
            outs = series_table(work, counts, keep=(1, 10_000) if args.only != "series" else ())
            if outs:
                read_table(outs)
            for out in outs.values():
                shutil.rmtree(out, ignore_errors=True)
        if args.only in (None, "rows"):
            rows_table(work)
        print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
