"""Per-series validation that needs time order: sort, duplicate timestamps, forward fill.

Runs on one work unit (a time chunk of a bucket of series, plus halo rows from the
neighbouring chunks), after the rows were grouped. Every row of a unit carries its
source file and row, so errors name them. Counts only include rows the unit owns
(halo rows are counted by the unit that owns them), so totals are exact.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from preprocessing.errors import InputError
from preprocessing.readers import row_label, values_of
from preprocessing.window import segment_starts


@dataclass
class Unit:
    """Clean, time-sorted rows of one work unit (all arrays have n rows)."""

    key: tuple[int, int]
    time: np.ndarray  # int64 ticks, sorted within each series
    series: np.ndarray  # int32 code into series_names
    series_names: list[str]
    values: np.ndarray  # float64 [n, C]
    owned: np.ndarray  # bool: row belongs to this unit's chunk (not halo)
    file: np.ndarray  # int32 index into the input paths, so errors can name the row
    row: np.ndarray  # int64 data row in that file

    def __len__(self) -> int:
        return len(self.time)

    def subset(self, keep: np.ndarray) -> Unit:
        """The unit with only the rows where `keep` is true."""
        return Unit(key=self.key, time=self.time[keep], series=self.series[keep], series_names=self.series_names,
                    values=self.values[keep], owned=self.owned[keep], file=self.file[keep], row=self.row[keep])

    def label(self, i: int, paths: list[str]) -> str:
        """Where row i of the unit came from: file and row (and line, for CSV)."""
        return row_label(paths[int(self.file[i])], int(self.row[i]))

    def segment_begins(self, max_gap: int) -> np.ndarray:
        """Starts of runs with one series and no gap > max_gap."""
        if len(self.time) == 0:
            return np.zeros(0, dtype=np.int64)
        by_gap = segment_starts(self.time, max_gap)
        by_series = np.flatnonzero(np.diff(self.series) != 0) + 1
        return np.union1d(by_gap, by_series).astype(np.int64)


def _fmt_time(t: int, kind: str) -> str:
    return str(np.datetime64(int(t), "ns")) if kind == "timestamp" else str(int(t))


def clean_unit(
    key: tuple[int, int],
    table: pa.Table,
    *,
    ncols: int,
    duplicates: str,
    nan_policy: str,
    ffill_limit: int,
    max_gap: int,
    time_kind: str,
    paths: list[str],
) -> tuple[Unit, Counter]:
    """Sort, resolve duplicates and forward-fill one unit's rows.

    `table` is normalized (see readers) with an extra bool column `owned`.
    """
    counts: Counter = Counter()
    has_series = "series" in table.column_names
    sort_keys = ([("series", "ascending")] if has_series else []) + [
        ("time", "ascending"),
        ("file", "ascending"),
        ("row", "ascending"),
    ]
    enc = _series_encoding(table) if has_series else None
    if not _in_order(table, enc):  # input already sorted by series and time needs no sort
        table = table.sort_by(sort_keys)
        enc = _series_encoding(table) if has_series else None
    n = table.num_rows
    time = table.column("time").to_numpy()
    owned = table.column("owned").to_numpy(zero_copy_only=False)
    if enc is not None:
        names = [str(s) for s in enc.dictionary.to_pylist()]
        # dictionary order follows first appearance, which is sorted order here
        series = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    else:
        names = [""]
        series = np.zeros(n, dtype=np.int32)
    values = values_of(table, ncols)
    files = table.column("file").to_numpy()
    rows = table.column("row").to_numpy()

    same = _repeated_times(time, series)
    if same.any():
        if duplicates == "fail":
            i = int(np.flatnonzero(same)[0])
            who = f"series {names[series[i]]!r} has" if has_series else "there are"
            raise InputError(
                f"{who} two rows at time {_fmt_time(time[i], time_kind)}: "
                f"{row_label(paths[files[i]], rows[i])} and {row_label(paths[files[i + 1]], rows[i + 1])}; "
                "remove one, or pass --duplicates keep-last to keep the later one"
            )
        counts["rows_dropped.duplicate_timestamp"] += int((same & owned).sum())
        time, series, values, owned, files, rows = (a[~same] for a in (time, series, values, owned, files, rows))

    unit = Unit(key=key, time=time, series=series, series_names=names, values=values, owned=owned, file=files,
                row=rows)
    if nan_policy == "ffill":
        unit, dropped, filled = _forward_fill(unit, limit=ffill_limit, max_gap=max_gap)
        counts["rows_dropped.nan_unfillable"] += dropped
        counts["values_forward_filled"] += filled
    return unit, counts


def _series_encoding(table: pa.Table) -> pa.DictionaryArray:
    return table.column("series").combine_chunks().dictionary_encode()


def _in_order(table: pa.Table, enc: pa.DictionaryArray | None) -> bool:
    """Whether the rows are already sorted by (series, time) with no time repeated in a series
    (then the file and row tie-breakers cannot matter): an O(n) check that saves the sort.
    `enc` is the series column's dictionary encoding (None: one series)."""
    t = table.column("time").to_numpy()
    later = t[1:] > t[:-1]
    if enc is None:
        return bool(later.all())
    names = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False), dtype=str)
    if len(names) > 1 and not (names[1:] > names[:-1]).all():  # first-appearance order is not sorted order
        return False
    codes = enc.indices.to_numpy(zero_copy_only=False)
    return bool(((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & later)).all())


def _repeated_times(time: np.ndarray, series: np.ndarray) -> np.ndarray:
    """Rows followed by a row of the same series and time. Rows are sorted by (series, time,
    file, row), so dropping these keeps the later row of each run (the one read last)."""
    same = np.zeros(len(time), dtype=bool)
    if len(time) > 1:
        same[:-1] = (time[1:] == time[:-1]) & (series[1:] == series[:-1])
    return same


def _forward_fill(unit: Unit, *, limit: int, max_gap: int) -> tuple[Unit, int, int]:
    """Carry the last finite value forward, within a segment, at most `limit` rows.

    Rows still non-finite afterwards (no earlier value in the segment, or a run longer
    than the limit) are dropped. Returns (unit, rows dropped, values filled), counting
    owned rows only.
    """
    v = unit.values
    n = len(v)
    if n == 0:
        return unit, 0, 0
    begins = unit.segment_begins(max_gap)
    seg_start = np.zeros(n, dtype=np.int64)
    seg_start[begins] = begins
    seg_start = np.maximum.accumulate(seg_start)
    idx = np.arange(n)
    filled = 0
    out = v.copy()
    for c in range(v.shape[1]):
        ok = np.isfinite(v[:, c])
        if ok.all():
            continue
        last = np.maximum.accumulate(np.where(ok, idx, -1))
        usable = (~ok) & (last >= seg_start) & (idx - last <= limit)
        src = np.where(usable, last, idx)
        out[:, c] = v[src, c]
        filled += int((usable & unit.owned).sum())
    keep = np.isfinite(out).all(axis=1)
    dropped = int((~keep & unit.owned).sum())
    cleaned = replace(unit, values=out).subset(keep)
    return cleaned, dropped, filled
