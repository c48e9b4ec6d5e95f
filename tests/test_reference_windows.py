"""benchmarks.reference_windows reads Parquet as it reads CSV (bench_preprocess --rows-factor uses Parquet)."""

import hashlib
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from demo.household_power import FEATURES, TIME, csv_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shard_digests(out: str) -> dict[str, str]:
    return {name: hashlib.sha256(open(os.path.join(out, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(out))}


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
