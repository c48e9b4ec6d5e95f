"""Chronological train/val/test split: boundaries in time, never random.

A random split of windows leaks the future into training for time series, so each
split is a time range: train [t_min, val_start), val [val_start, test_start), test
[test_start, t_max]. A window belongs to a split only if all its rows and its target
lie inside it (see window.split_windows).
"""

from __future__ import annotations

import numpy as np

from contract.manifest import Boundaries
from preprocessing.errors import SpecError


def parse_time(text: str | int, *, kind: str) -> int:
    """A boundary given by the user, in the same ticks as the time column."""
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise SpecError(f"split time {text!r} must be an integer: the time column holds integers") from None
    try:
        return int(np.datetime64(str(text).replace("Z", ""), "ns").astype(np.int64))
    except ValueError:
        raise SpecError(f"cannot read split time {text!r}; write ISO-8601 such as 2010-06-01 or 2010-06-01T12:00") from None


def boundaries_from_fractions(t_min: int, t_max: int, train: float, val: float) -> Boundaries:
    """Cut the global time range [t_min, t_max] at the given fractions."""
    width = t_max - t_min
    return Boundaries(
        val_start=t_min + int(np.ceil(width * train)),
        test_start=t_min + int(np.ceil(width * (train + val))),
    )


def resolve_boundaries(
    *, kind: str, t_min: int, t_max: int, train_fraction: float, val_fraction: float,
    val_start: str | None, test_start: str | None,
) -> Boundaries:
    if val_start is not None and test_start is not None:
        b = Boundaries(parse_time(val_start, kind=kind), parse_time(test_start, kind=kind))
        if b.val_start > b.test_start:
            raise SpecError(f"--val-start {val_start} is after --test-start {test_start}")
        if not (t_min < b.val_start <= t_max):
            raise SpecError(f"--val-start {val_start} leaves no training rows or lies after the data's end")
        return b
    return boundaries_from_fractions(t_min, t_max, train_fraction, val_fraction)
