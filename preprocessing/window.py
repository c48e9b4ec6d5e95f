"""Which windows a series (or a work unit of it) yields, and which work unit owns them.

The geometry of one window (which rows are inputs and target) is `contract.WindowSpec`;
this module applies it to series with gaps, split boundaries and chunk borders.
Everything here is numpy in, numpy out. Windows are described by their first row
("start") so a block of windows can be gathered on demand without materializing all
windows of a work unit (materialized windows repeat every row L times).
"""

from __future__ import annotations

import numpy as np

from contract.records import TEST
from contract.window import WindowSpec


def segment_starts(times: np.ndarray, max_gap: int) -> np.ndarray:
    """Indices where a new segment begins: row 0 and every row after a gap > max_gap.

    Args:
        times: sorted int64 times of one series.
        max_gap: largest allowed step inside a segment, in time ticks.
    """
    if len(times) == 0:
        return np.zeros(0, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(times) > max_gap) + 1
    return np.concatenate([[0], breaks]).astype(np.int64)


def window_starts(
    n: int,
    spec: WindowSpec,
    *,
    stride: int = 1,
    segment_begins: np.ndarray | None = None,
) -> np.ndarray:
    """First rows of all windows that fit inside one series, never crossing a segment.

    With `stride` > 1 only starts s with (s - segment start) % stride == 0 are kept, as
    `timeseries_dataset_from_array(sequence_stride=stride)` does. (The Beam job passes
    1 here and anchors `spec.stride` to the global time grid with `grid_phase_ok`.)
    """
    begins = np.zeros(1, dtype=np.int64) if segment_begins is None else np.asarray(segment_begins, np.int64)
    ends = np.append(begins[1:], n)
    parts = [np.arange(b, e - spec.span + 1, stride, dtype=np.int64)
             for b, e in zip(begins, ends, strict=True) if e - b >= spec.span]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def gather_windows(
    x: np.ndarray, y: np.ndarray, starts: np.ndarray, spec: WindowSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Materialize the windows starting at `starts`.

    Returns:
        inputs [W, L, F] and targets [W, T] (or [W, H, T] for a target sequence).
    """
    return x[spec.input_rows(starts)], y[spec.target_rows_of(starts)]


def make_windows(x: np.ndarray, y: np.ndarray, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """All windows of one gap-free series (the reference the tests compare against)."""
    starts = window_starts(len(x), spec, stride=spec.stride)
    return gather_windows(x, y, starts, spec)


def grid_phase_ok(times: np.ndarray, *, t0: int, step: int, stride: int) -> np.ndarray:
    """Stride filter anchored to the global time grid, so it does not depend on chunking.

    A work unit sees only part of a long series, so it cannot count rows from the
    segment start; instead a start row is kept when its grid index round((t-t0)/step)
    is a multiple of `stride`. On a regular series starting at t0 this is exactly
    `sequence_stride=stride`.
    """
    if stride == 1:
        return np.ones(len(times), dtype=bool)
    return grid_index(times, t0=t0, step=step) % stride == 0


def grid_index(times: np.ndarray, *, t0: int, step: int) -> np.ndarray:
    """Index of each time on the global grid t0 + k·step (rounded: jittered times keep their k)."""
    return np.rint((np.asarray(times) - t0) / step).astype(np.int64)


def owned_starts(times: np.ndarray, owned: np.ndarray, begins: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """First rows of the windows a work unit owns (its own first row), none across a segment."""
    starts = window_starts(len(times), spec, segment_begins=begins)
    return starts[owned[starts]]


def unit_assignments(
    times: np.ndarray,
    *,
    t0: int,
    span: int,
    halo_after: int,
    halo_before: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map rows to time chunks: each row to the chunk it belongs to, plus halo copies.

    A window starting near the end of chunk c needs up to L+H-1 rows of chunk c+1, so
    rows within `halo_after` ticks after a chunk's end are also sent to that chunk (as
    halo, not owned). `halo_before` does the same for rows just before a chunk's start
    (used by forward fill). A window is emitted only by the chunk owning its first row,
    so no window is lost or duplicated at chunk borders.

    Returns:
        (row_index, chunk, owned) arrays, one entry per (row, chunk) copy.
    """
    own = np.floor_divide(times - t0, span)
    rows = [np.arange(len(times))]
    chunks = [own]
    owned = [np.ones(len(times), dtype=bool)]
    k = 1
    while k * span < halo_after + span:
        # chunk c-k ends at t0 + (c-k+1)*span; row is in its after-halo if t < end + halo_after
        target = own - k
        end = t0 + (target + 1) * span
        m = times < end + halo_after
        if not m.any():
            break
        rows.append(np.flatnonzero(m))
        chunks.append(target[m])
        owned.append(np.zeros(int(m.sum()), dtype=bool))
        k += 1
    k = 1
    while halo_before > 0 and k * span < halo_before + span:
        target = own + k
        start = t0 + target * span
        m = times >= start - halo_before
        if not m.any():
            break
        rows.append(np.flatnonzero(m))
        chunks.append(target[m])
        owned.append(np.zeros(int(m.sum()), dtype=bool))
        k += 1
    return np.concatenate(rows), np.concatenate(chunks), np.concatenate(owned)


def split_windows(
    starts: np.ndarray, split_of_row: np.ndarray, spec: WindowSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Split id of each window, and a mask of windows lying wholly inside one split.

    Split ids grow with time, so a window lies in one split iff its first row and its
    target row share the split id.
    """
    first = split_of_row[starts]
    last = split_of_row[spec.target_index(starts)]
    return first, first == last


def unit_window_starts(
    times: np.ndarray,
    owned: np.ndarray,
    split_of_row: np.ndarray,
    begins: np.ndarray,
    spec: WindowSpec,
    *,
    t0: int,
    step: int,
) -> tuple[list[np.ndarray], dict[str, int]]:
    """The windows a work unit owns, per split id, and what was left out (counted).

    A window is owned by the unit owning its first row; it never crosses a segment
    (`begins`: where a new series or a too-large gap starts), nor a split boundary (those are counted, not silently lost); the
    stride is anchored to the global time grid (t0, step).

    Returns:
        ([starts of split 0, 1, 2], counts) with counts segments_too_short,
        rows_in_short_segments and windows_dropped.crosses_split_boundary.
    """
    seg_len = np.diff(np.append(begins, len(times)))
    short = (seg_len < spec.span) & owned[begins]
    starts = owned_starts(times, owned, begins, spec)
    starts = starts[grid_phase_ok(times[starts], t0=t0, step=step, stride=spec.stride)]
    split_id, inside = split_windows(starts, split_of_row, spec)
    counts = {
        "segments_too_short": int(short.sum()),
        "rows_in_short_segments": int(seg_len[short].sum()),
        "windows_dropped.crosses_split_boundary": int((~inside).sum()),
    }
    return [starts[inside & (split_id == s)] for s in range(3)], counts


def backtest_window_starts(
    times: np.ndarray,
    owned: np.ndarray,
    split_of_row: np.ndarray,
    begins: np.ndarray,
    spec: WindowSpec,
    *,
    t0: int,
    step: int,
    test_start: int,
    every: int,
) -> np.ndarray:
    """Windows of a rolling-origin backtest: forecast origins every `every` steps over the test range.

    The origin is a window's last input row. Origins sit on the global time grid (t0, step)
    every `every` steps, counted from the last grid point before test_start, so the first
    origin forecasts the first test rows. A backtest window needs all its targets in the test
    split, but its inputs may reach back into validation or training (what a forecaster knew
    at that origin); it never crosses a series or a gap. Owned like every window (by the unit
    owning its first row), so chunking neither loses nor duplicates one.
    """
    starts = owned_starts(times, owned, begins, spec)
    first_origin = int(np.ceil((test_start - t0) / step)) - 1
    k = grid_index(times[spec.last_input(starts)], t0=t0, step=step) - first_origin
    starts = starts[(k >= 0) & (k % every == 0)]
    first_target = spec.last_input(starts) + int(spec.target_distances[0])
    return starts[split_of_row[first_target] == TEST]


def short_segment_gaps(
    times: np.ndarray, series: np.ndarray, owned: np.ndarray, begins: np.ndarray, spec: WindowSpec, *, step: int
) -> dict[int, int]:
    """Rows in owned segments too short for one window, by the gap that would join them.

    For each such segment, the smaller of the time gaps to its neighbours in the same
    series (a series start or end has none) is rounded up to a power of two in steps:
    a --max-gap of that many steps would merge it. Returns {steps: rows}; segments with
    no neighbour in their series are under key 0 (no --max-gap helps them).
    """
    n = len(times)
    if n == 0:
        return {}
    ends = np.append(begins[1:], n)
    short = ((ends - begins) < spec.span) & owned[begins]
    b, e = begins[short], ends[short]
    before = np.maximum(b - 1, 0)
    after = np.minimum(e, n - 1)
    gap_before = np.where((b > 0) & (series[before] == series[b]), times[b] - times[before], np.inf)
    gap_after = np.where((e < n) & (series[after] == series[e - 1]), times[after] - times[e - 1], np.inf)
    gap = np.minimum(gap_before, gap_after).astype(np.float64)
    joinable = np.isfinite(gap)
    steps = np.ones(len(gap))
    steps[joinable] = 2 ** np.ceil(np.log2(np.maximum(1.0, gap[joinable] / step)))
    keys = np.where(joinable, steps, 0).astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    rows = np.bincount(inverse, weights=e - b, minlength=len(uniq))
    return {int(k): int(r) for k, r in zip(uniq, rows, strict=True)}
