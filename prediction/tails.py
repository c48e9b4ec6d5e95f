"""Each series' last rows, as a mergeable accumulator, and the forecast window cut from them.

Forecast mode needs only the end of every series: the last L rows (plus the forward-fill
reach). Each reader batch is reduced to its series' tails, and tails merge exactly
(concatenate, order by time, resolve repeated times, keep the last K), so only K rows per
series and input batch travel through the shuffle, never every row. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocessing.clean import Unit, _forward_fill
from preprocessing.errors import InputError
from preprocessing.readers import row_label

# reasons a series gets no forecast (the `skipped` output and predictions.json)
TOO_SHORT = "too_short"
GAP = "gap_in_window"
MISSING = "missing_values"
UNKNOWN = "unknown_series"
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Tail:
    """The last rows of one series in time order, at most one per time: the accumulator."""

    time: np.ndarray  # int64 [k]
    file: np.ndarray  # int32 [k]: index into the input paths, so errors can name the row
    row: np.ndarray  # int64 [k]
    values: np.ndarray  # float64 [k, C]

    def __len__(self) -> int:
        return len(self.time)


def keep_last(tail: Tail, k: int, *, duplicates: str, paths: list[str], series: str) -> Tail:
    """Order by (time, file, row), resolve repeated times as the preprocessing job does (fail,
    or keep-last: keep the later row), and keep the last k rows. `duplicates="keep"` keeps
    repeated times (the rows of the last k times), for merges that cannot name the series yet."""
    order = np.lexsort((tail.row, tail.file, tail.time))
    t, f, r, v = tail.time[order], tail.file[order], tail.row[order], tail.values[order]
    if duplicates == "keep":
        distinct = np.unique(t)
        start = int(np.searchsorted(t, distinct[-k])) if len(distinct) > k else 0
        return Tail(t[start:], f[start:], r[start:], v[start:])
    same = np.zeros(len(t), bool)
    same[:-1] = t[1:] == t[:-1]  # a row followed by one at the same time: the later one wins
    if same.any():
        if duplicates == "fail":
            i = int(np.flatnonzero(same)[0])
            who = f"series {series!r} has" if series else "there are"
            raise InputError(f"{who} two rows at time {t[i]}: {row_label(paths[f[i]], int(r[i]))} and "
                             f"{row_label(paths[f[i + 1]], int(r[i + 1]))}; remove one, or the export's dataset "
                             "was made with --duplicates keep-last to keep the later one")
        keep = ~same
        t, f, r, v = t[keep], f[keep], r[keep], v[keep]
    return Tail(t[-k:], f[-k:], r[-k:], v[-k:])


def merge(tails: list[Tail], k: int, *, duplicates: str, paths: list[str], series: str) -> Tail:
    """The tail of the union of `tails`' rows: exact whatever the order or grouping."""
    cat = tails[0] if len(tails) == 1 else Tail(
        *(np.concatenate([getattr(t, f) for t in tails]) for f in ("time", "file", "row", "values")))
    return keep_last(cat, k, duplicates=duplicates, paths=paths, series=series)


def batch_tails(series: np.ndarray, time: np.ndarray, file: np.ndarray, row: np.ndarray, values: np.ndarray,
                k: int) -> list[tuple[int, Tail]]:
    """Split one batch into (series code, its last k rows by time) pairs. Repeated times are
    kept (up to k + repeats rows) so the merge can resolve or report them."""
    order = np.lexsort((row, file, time, series))
    s, t = series[order], time[order]
    n = len(s)
    if n == 0:
        return []
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]) + 1, n]
    begins = np.r_[0, ends[:-1]]
    out = []
    for b, e in zip(begins.tolist(), ends.tolist(), strict=True):
        start = max(b, e - k)
        while start > b and t[start - 1] >= t[start]:  # a repeated time at the cut: keep it too
            start -= 1
        idx = order[start:e]
        out.append((int(s[b]), Tail(time[idx], file[idx], row[idx], values[idx])))
    return out


@dataclass(frozen=True)
class Window:
    """One series' forecast input: its last L rows (raw values of every file column) and their times."""

    values: np.ndarray  # float64 [L, C]
    time: np.ndarray  # int64 [L]


def forecast_window(tail: Tail, *, look_back: int, max_gap: int, nan_policy: str, ffill_limit: int,
                    columns: tuple[str, ...], paths: list[str]) -> Window | str:
    """The window ending at the series' last row, or the reason there is none (TOO_SHORT, GAP,
    MISSING). Missing values are forward-filled as the preprocessing job fills them, from the
    rows the tail holds (K = L + the fill limit). A value beyond float32 is an error naming
    its row, as in preprocessing."""
    if nan_policy == "ffill" and len(tail):
        unit = Unit(key=(0, 0), time=tail.time, series=np.zeros(len(tail), np.int32), series_names=[""],
                    values=tail.values, owned=np.ones(len(tail), bool), file=tail.file, row=tail.row)
        unit, _, _ = _forward_fill(unit, limit=ffill_limit, max_gap=max_gap)
        if len(unit) < len(tail) and len(unit) < look_back:
            return MISSING
        tail = Tail(unit.time, unit.file, unit.row, unit.values)
    if len(tail) < look_back:
        return TOO_SHORT
    t, v = tail.time[-look_back:], tail.values[-look_back:]
    if look_back > 1 and (np.diff(t) > max_gap).any():
        return GAP
    if not np.isfinite(v).all():
        return MISSING
    big = np.abs(v) > FLOAT32_MAX
    if big.any():
        i, c = np.argwhere(big)[0]
        j = len(tail) - look_back + i
        raise InputError(f"{row_label(paths[tail.file[j]], int(tail.row[j]))}: column {columns[c]!r} is "
                         f"{v[i, c]:g}, which is beyond float32 (about 3.4e38), the model's input type; fix "
                         "the value or rescale the column")
    return Window(v, t)
