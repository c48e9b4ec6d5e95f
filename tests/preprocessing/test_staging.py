"""Rows files split by work unit: runs of a file are read in place, the rest copied; both give
the rows and owned flags that unit_slices (an independent take per unit) gives."""

import os

import numpy as np
import pandas as pd
import pyarrow as pa

from preprocessing import readers
from preprocessing.plan import make_plan, unit_slices
from preprocessing.staging import RowsWriter, read_fragments, read_table, split_by_unit
from tests.preprocessing.units import config, frame


def staged(df: pd.DataFrame, cfg, directory, batch_rows: int = 37):
    """The frame's rows, in its order, staged as one rows file in record batches of `batch_rows`."""
    writer = RowsWriter(str(directory), 0, 10**9)
    for lo in range(0, len(df), batch_rows):
        batch = pa.RecordBatch.from_pandas(df.iloc[lo:lo + batch_rows].reset_index(drop=True), preserve_index=False)
        table, kind = readers.normalize(batch, path="f0", file_index=0, first_row=lo, cfg=cfg)
        writer.add(table.replace_schema_metadata({"kind": kind}))
    return writer.close()


def plan_of(rows_file, cfg):
    from preprocessing.plan import ScanAccumulator

    return make_plan(ScanAccumulator().merge(rows_file.scan).result(["f0"]), cfg)


def by_row(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas().sort_values("row").reset_index(drop=True)


def check(df, cfg, tmp_path):
    """Split the staged frame; every unit equals unit_slices' copy. Returns the fragments."""
    rows_file = staged(df, cfg, tmp_path)
    plan = plan_of(rows_file, cfg)
    table = read_table(rows_file.path)
    frag_path = str(tmp_path / "frags.arrow")
    got: dict = {}
    for key, frag in split_by_unit(rows_file.path, table, plan, frag_path):
        got.setdefault(key, []).append(frag)
    want = dict(unit_slices(table, plan))
    assert sorted(got) == sorted(want) and len(want) > 2
    for key, frags in got.items():
        pd.testing.assert_frame_equal(by_row(read_fragments(frags)), by_row(want[key]))
    return [f for frags in got.values() for f in frags], os.path.exists(frag_path)


def test_a_file_sorted_by_time_is_read_in_place_across_record_batches(tmp_path):
    df, cfg = frame(n=300, series=("a",)), config(chunk_rows=100)
    frags, copied = check(df, cfg, tmp_path)
    assert all(f.start >= 0 for f in frags) and not copied
    assert any(f.owned[1] < f.rows for f in frags)  # units with halo rows after their own


def test_halo_before_own_rows_and_a_file_in_reverse_order_are_runs_too(tmp_path):
    df = frame(n=300, series=("a",))
    cfg = config(chunk_rows=100, nan_policy="ffill", ffill_limit=3)
    frags, copied = check(df, cfg, tmp_path / "ffill")
    assert all(f.start >= 0 for f in frags) and not copied
    assert any(f.owned[0] > 0 for f in frags)  # halo rows before the unit's own
    frags, copied = check(df.iloc[::-1], config(chunk_rows=100), tmp_path / "reverse")
    assert all(f.start >= 0 for f in frags) and not copied


def test_rows_out_of_order_are_copied(tmp_path):
    """Shuffled rows are no runs; a swap at a chunk border leaves a run whose own rows are not one
    run; both are copied, and every unit still reads back exactly."""
    df, cfg = frame(n=300, series=("a",)), config(chunk_rows=100)
    frags, copied = check(df.sample(frac=1, random_state=0), cfg, tmp_path / "shuffled")
    assert copied and all(f.start < 0 for f in frags)
    border = 100  # hourly rows from the plan's t_min: row 100 opens the second 100-hour chunk
    assert df["ts"].iloc[border] - df["ts"].iloc[0] == pd.Timedelta(hours=100)
    order = np.arange(len(df))
    order[[border - 1, border]] = order[[border, border - 1]]
    frags, copied = check(df.iloc[order], cfg, tmp_path / "swapped")
    assert copied and any(f.start < 0 for f in frags) and any(f.start >= 0 for f in frags)
