"""Tails merge exactly: any split of a series' rows into batches gives its last K rows."""

import numpy as np
import pytest

from prediction import tails
from preprocessing.errors import InputError

PATHS = ["a.parquet", "b.parquet"]


def rows(n=200, series=5, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, series, n)
    t = rng.permutation(n).astype(np.int64) * 10  # distinct times, shuffled
    return s, t, rng.integers(0, 2, n).astype(np.int32), np.arange(n, dtype=np.int64), rng.normal(size=(n, 3))


@pytest.mark.parametrize("batches", [1, 3, 17])
def test_any_batching_gives_each_series_last_k_rows(batches):
    s, t, f, r, v = rows()
    k = 7
    parts: dict[int, list] = {}
    for idx in np.array_split(np.random.default_rng(1).permutation(len(s)), batches):
        for code, tail in tails.batch_tails(s[idx], t[idx], f[idx], r[idx], v[idx], k):
            parts.setdefault(code, []).append(tail)
    for code, got in parts.items():
        merged = tails.merge(got[::-1], k, duplicates="fail", paths=PATHS, series=str(code))
        mine = np.flatnonzero(s == code)
        want = mine[np.argsort(t[mine])][-k:]
        np.testing.assert_array_equal(merged.time, t[want])
        np.testing.assert_array_equal(merged.values, v[want])


def test_repeated_times_are_kept_until_the_series_is_known_then_resolved_or_reported():
    t = np.array([1, 2, 3, 3], np.int64)
    tail = tails.Tail(t, np.zeros(4, np.int32), np.arange(4, dtype=np.int64), np.arange(4.0)[:, None])
    kept = tails.keep_last(tail, 2, duplicates="keep", paths=PATHS, series="s")
    assert kept.time.tolist() == [2, 3, 3]
    last = tails.keep_last(kept, 2, duplicates="keep-last", paths=PATHS, series="s")
    assert last.time.tolist() == [2, 3] and last.values[:, 0].tolist() == [1.0, 3.0]
    with pytest.raises(InputError, match=r"series 's' has two rows at time 3: a.parquet row 3 .*and a.parquet row 4"):
        tails.keep_last(kept, 2, duplicates="fail", paths=PATHS, series="s")


def window(times, values, **kw):
    n = len(times)
    tail = tails.Tail(np.asarray(times, np.int64), np.zeros(n, np.int32), np.arange(n, dtype=np.int64),
                      np.asarray(values, float).reshape(n, -1))
    args = {"look_back": 3, "max_gap": 1, "nan_policy": "fail", "ffill_limit": 2, "columns": ("x",), "paths": PATHS}
    return tails.forecast_window(tail, **{**args, **kw})


def test_forecast_window_and_its_reasons():
    w = window([1, 2, 3, 4], [1, 2, 3, 4])
    assert w.time.tolist() == [2, 3, 4] and w.values[:, 0].tolist() == [2, 3, 4]
    assert window([1, 2], [1, 2]) == tails.TOO_SHORT
    assert window([1, 2, 4, 5], [1, 2, 3, 4]) == tails.GAP
    assert window([1, 2, 3, 4], [1, 2, np.nan, 4], nan_policy="ffill").values[:, 0].tolist() == [2, 2, 4]
    assert window([1, 2, 3, 4], [np.nan, np.nan, np.nan, np.nan], nan_policy="ffill") == tails.MISSING
    with pytest.raises(InputError, match=r"a.parquet row 4: column 'x' is 1e\+39, which is beyond float32"):
        window([1, 2, 3, 4], [1, 2, 3, 1e39])
