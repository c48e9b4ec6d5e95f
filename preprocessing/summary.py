"""The end-of-job summary: what was read, dropped and written, and a warning when many rows
gave no window (segments too short), with the --max-gap that would keep them.

Pure: manifest in, log lines out.
"""

from __future__ import annotations

import logging

import numpy as np

from contract.manifest import Manifest

SHORT_SEGMENT_WARN = 0.10  # warn when more than this share of rows gives no window

_UNITS = (("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("min", 60_000_000_000), ("s", 1_000_000_000))


def format_duration(ticks: int, kind: str) -> str:
    """Ticks as a --max-gap value: '4h', '90min' for timestamps, the number for integer time."""
    if kind != "timestamp":
        return str(int(ticks))
    for name, size in _UNITS:
        if ticks % size == 0:
            return f"{ticks // size}{name}"
    return f"{ticks}ns"


def max_gap_suggestion(m: Manifest, keep: float = 0.9) -> tuple[str, float] | None:
    """(--max-gap value, share of short-segment rows it keeps), or None when no gap would help."""
    by_steps = sorted((int(k), v) for k, v in m.counts.short_segment_gap_steps.items() if int(k) > 0)
    total = m.counts.rows_in_short_segments
    if not by_steps or not total:
        return None
    cumulative = np.cumsum([rows for _, rows in by_steps])
    i = min(int(np.searchsorted(cumulative, keep * total)), len(by_steps) - 1)
    return format_duration(max(by_steps[i][0] * m.step, m.max_gap + 1), m.time_kind), float(cumulative[i] / total)


def summary(m: Manifest, seconds: float) -> list[tuple[int, str]]:
    """(log level, message) lines for the end of the job."""
    c = m.counts
    short_share = c.rows_in_short_segments / c.rows_read if c.rows_read else 0.0
    lines = [(logging.INFO, (
        f"seqscale: {c.rows_read:,} rows read, dropped {c.rows_dropped or 'none'}, "
        f"{c.rows_in_short_segments:,} rows ({short_share:.0%}) in {c.segments_too_short:,} segments too short for a "
        f"window, windows {c.windows}, {seconds:.1f} s"))]
    if short_share > SHORT_SEGMENT_WARN:
        hint = max_gap_suggestion(m)
        fix = (f"--max-gap {hint[0]} would keep {hint[1]:.0%} of them" if hint else
               "they are whole series shorter than that")
        lines.append((logging.WARNING, (
            f"seqscale: {short_share:.0%} of the rows give no window: they lie in segments shorter than "
            f"look_back + horizon = {m.window.span} rows, split by gaps larger than --max-gap "
            f"{format_duration(m.max_gap, m.time_kind)}; {fix} (or lower --look-back)")))
    return lines
