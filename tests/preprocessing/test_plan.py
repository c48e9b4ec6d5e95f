"""Pure planning: the global scan is independent of batching, the plan's sizes, unit slicing."""

import numpy as np
import pyarrow as pa
import pytest

from preprocessing.errors import InputError
from preprocessing.plan import Scan, ScanAccumulator, make_plan, typical_step, unit_slices
from tests.preprocessing.units import HOUR, config, frame, tables


def scan_of(ts, merge_order):
    accs = [ScanAccumulator().add(t) for t in ts]
    out = ScanAccumulator()
    for i in merge_order:
        out.merge(accs[i])
    return out.result(["f0", "f1", "f2", "f3", "f4"])


def test_scan_does_not_depend_on_batching_or_merge_order():
    df, cfg = frame(), config()
    t = df["ts"].astype("datetime64[ns]").astype(np.int64)
    expected = Scan(rows=len(df), t_min=int(t.min()), t_max=int(t.max()), kind="timestamp", step=HOUR)
    assert scan_of(tables(df, cfg, parts=1), [0]) == expected
    assert scan_of(tables(df, cfg, parts=5, seed=1), [4, 0, 3, 1, 2]) == expected
    assert scan_of(tables(df, cfg, parts=5, seed=2), [0, 1, 2, 3, 4]) == expected


def test_scan_refuses_no_rows_and_mixed_time_kinds():
    with pytest.raises(InputError, match="hold no data rows"):
        ScanAccumulator().result([])
    df, cfg = frame(), config()
    a, b = tables(df, cfg, parts=2)
    b = b.replace_schema_metadata({"kind": "integer"})
    with pytest.raises(InputError, match="different types across files"):
        scan_of([a, b], [0, 1])


def test_typical_step_regular_and_jittered():
    t = pa.table({"time": pa.array(np.arange(0, 100 * 60, 60), pa.int64())})
    assert typical_step(t) == (60.0, 99)
    rng = np.random.default_rng(0)
    jitter = np.cumsum(60 + rng.integers(-20, 20, size=200))
    step, n = typical_step(pa.table({"time": pa.array(jitter, pa.int64())}))
    assert n == 199 and step == pytest.approx(np.median(np.diff(jitter)))


def test_plan_sizes():
    cfg = config(chunk_rows=100, look_back=6, horizon=2)
    scan = Scan(rows=600, t_min=0, t_max=299 * HOUR + 24 * HOUR, kind="timestamp", step=HOUR)
    plan = make_plan(scan, cfg)
    width = scan.t_max - scan.t_min + HOUR
    assert plan.max_gap == int(1.5 * HOUR) and plan.span == 100 * HOUR
    assert plan.buckets == int(np.ceil(600 * HOUR / width))
    assert plan.halo_after == (6 + 2 - 1) * plan.max_gap and plan.halo_before == 0
    assert make_plan(scan, config(max_gap="3h", nan_policy="ffill", ffill_limit=4)).halo_before == 4 * 3 * HOUR


def test_unit_slices_own_every_row_once_and_copy_the_halo():
    df, cfg = frame(), config()
    [table] = tables(df, cfg, parts=1)
    scan = scan_of([table], [0])
    plan = make_plan(scan, cfg)
    owned_rows, halo = [], []
    for (_bucket, chunk), part in unit_slices(table, plan):
        t = part.column("time").to_numpy()
        owned = part.column("owned").to_numpy(zero_copy_only=False)
        start = plan.t_min + chunk * plan.span
        assert ((t[owned] >= start) & (t[owned] < start + plan.span)).all()
        assert ((t[~owned] >= start + plan.span) & (t[~owned] < start + plan.span + plan.halo_after)).all()
        series = np.array(part.column("series").to_pylist())
        owned_rows += list(zip(series[owned].tolist(), t[owned].tolist(), strict=True))
        halo.append(int((~owned).sum()))
    keys = list(zip(df["series"], df["ts"].astype("datetime64[ns]").astype(np.int64), strict=True))
    assert sorted(owned_rows) == sorted(keys)
    assert sum(halo) > 0


def test_unit_slices_are_compact_when_pickled():
    """Beam pickles elements between stages, and a pickled pyarrow slice carries its whole
    parent buffer: with small chunks every slice of a batch would ship the batch again
    (--chunk-rows 1000 took 3.3 GB instead of 0.35 GB; see BENCHMARKS.md)."""
    import pickle

    df, cfg = frame(n=2000, series=("a", "b", "c")), config(chunk_rows=100, look_back=6, horizon=2)
    [table] = tables(df, cfg, parts=1)
    plan = make_plan(scan_of([table], [0]), cfg)
    parts = [part for _, part in unit_slices(table, plan)]
    assert len(parts) > 10
    shipped = sum(len(pickle.dumps(p)) for p in parts)
    assert shipped < 2 * len(pickle.dumps(table)), (shipped, len(pickle.dumps(table)))


def test_units_follow_rows_not_series():
    """10,000 series of 200 hourly rows over the same 200 hours: about rows / chunk_rows units,
    not one per series (the time range is shorter than a chunk)."""
    scan = Scan(rows=2_000_000, t_min=0, t_max=199 * HOUR, kind="timestamp", step=HOUR)
    plan = make_plan(scan, config(chunk_rows=100_000))
    assert plan.span == 200 * HOUR and plan.buckets == 20
    long = Scan(rows=2_000_000, t_min=0, t_max=999_999 * HOUR, kind="timestamp", step=HOUR)  # 2 long series
    plan = make_plan(long, config(chunk_rows=100_000))
    assert plan.span == 100_000 * HOUR and plan.buckets == 2
    assert make_plan(scan, config(series_column=None, chunk_rows=100_000)).buckets == 1
