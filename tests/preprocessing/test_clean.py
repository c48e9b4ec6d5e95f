"""clean_unit: rows already in (series, time) order skip the sort and give the same unit as shuffled rows."""

import numpy as np
import pyarrow as pa

from preprocessing.clean import _in_order, _series_encoding, clean_unit
from tests.preprocessing.units import config, frame, tables


def unit_from(table):
    table = table.append_column("owned", pa.array(np.ones(table.num_rows, bool)))
    unit, _ = clean_unit((0, 0), table, ncols=2, duplicates="fail", nan_policy="fail", ffill_limit=1,
                         max_gap=10**18, time_kind="timestamp", paths=["f0"])
    return unit


def test_sorted_and_shuffled_rows_give_the_same_unit():
    cfg = config()
    [shuffled] = [t.replace_schema_metadata(None) for t in tables(frame(series=("b", "a", "c")), cfg, parts=1)]
    ordered = shuffled.sort_by([("series", "ascending"), ("time", "ascending")])
    assert _in_order(ordered, _series_encoding(ordered)) and not _in_order(shuffled, _series_encoding(shuffled))
    a, b = unit_from(ordered), unit_from(shuffled)
    assert a.series_names == b.series_names == ["a", "b", "c"]
    for name in ("time", "series", "values", "file", "row"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_in_order_needs_sorted_series_names_and_times_that_grow():
    def in_order(table):
        return _in_order(table, _series_encoding(table) if "series" in table.column_names else None)

    t = pa.array(np.array([1, 2, 1, 2], np.int64))
    assert in_order(pa.table({"time": t, "series": ["a", "a", "b", "b"]}))
    assert not in_order(pa.table({"time": t, "series": ["b", "b", "a", "a"]}))  # series out of order
    assert not in_order(pa.table({"time": pa.array(np.array([1, 1, 2, 3], np.int64)),
                                  "series": ["a", "a", "a", "a"]}))  # a repeated time
    assert in_order(pa.table({"time": pa.array(np.arange(5, dtype=np.int64))}))
    assert not in_order(pa.table({"time": pa.array(np.array([0, 2, 1], np.int64))}))
