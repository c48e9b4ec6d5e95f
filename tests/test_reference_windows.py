"""benchmarks.reference_windows and bench_preprocess's window checksum, for the --rows-factor runs (Parquet, times of 2040)."""

import hashlib
import os
import pathlib
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from demo.household_power import FEATURES, TIME, csv_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shard_digests(out) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(pathlib.Path(out).iterdir())}


def run_reference(path: str, out: str) -> None:
    subprocess.run([sys.executable, "-m", "benchmarks.reference_windows", "--input", path, "--output", out,
                    "--time-column", TIME, "--features", ",".join(FEATURES), "--target", FEATURES[0]],
                   check=True, cwd=ROOT, timeout=120)


def test_parquet_input_writes_the_same_shards_as_csv(tmp_path):
    with open(csv_path()) as f:
        head = "".join(next(f) for _ in range(3001))  # the header and 3,000 minutes
    small_csv = tmp_path / "minutes.csv"
    small_csv.write_text(head)
    table = pacsv.read_csv(small_csv)
    parquet = tmp_path / "minutes.parquet"
    pq.write_table(table.set_column(0, TIME, table.column(TIME).cast(pa.timestamp("ns"))), parquet)

    run_reference(str(small_csv), str(tmp_path / "from_csv"))
    run_reference(str(parquet), str(tmp_path / "from_parquet"))

    csv_shards = shard_digests(tmp_path / "from_csv")
    assert len(csv_shards) == 16 + 8 + 8 + 1  # the shards and counts.json
    assert shard_digests(tmp_path / "from_parquet") == csv_shards


def write_records(directory, blocks):
    """One train shard of these (x, y, t) blocks, one record each, written by the job's shard writer."""
    from preprocessing.records import encode_block_parts, frame_parts
    from preprocessing.shards import write_shard

    os.makedirs(directory)
    records = ((len(t), frame_parts(encode_block_parts(x, y, t, np.zeros(len(t), np.int64)))) for x, y, t in blocks)
    write_shard(os.path.join(directory, "train-00000-of-00001.tfrecord"), records, compression="none")


def test_split_sums_agree_however_windows_are_grouped_into_records(tmp_path):
    """Times of 2040 (the x5 table) overflow numpy's int64 sum of a 256-window record; the
    checksum must still be equal for the same windows in other records."""
    from benchmarks.bench_preprocess import split_sums

    n = 1024
    rng = np.random.default_rng(0)
    t = np.datetime64("2040-01-01", "ns").astype(np.int64) + rng.integers(0, 10**15, n)
    x = rng.normal(size=(n, 3, 2)).astype(np.float32)
    y = rng.normal(size=(n, 1, 1)).astype(np.float32)
    write_records(tmp_path / "a", [(x[i:i + 256], y[i:i + 256], t[i:i + 256]) for i in range(0, n, 256)])
    order = rng.permutation(n)
    cuts = [0, 10, 700, 1000, n]  # other records, other sizes, other order
    write_records(tmp_path / "b", [(x[order[a:b]], y[order[a:b]], t[order[a:b]]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)])

    wa, ya, ta = split_sums(str(tmp_path / "a"), "train")
    wb, yb, tb = split_sums(str(tmp_path / "b"), "train")
    assert wa == wb == n
    assert abs(ya - yb) < 1e-3 and abs(ya - float(y.sum())) < 1e-3
    assert ta == tb == sum(int(v) for v in t) % 2**64
