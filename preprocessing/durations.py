"""Durations given by the user ("90s", "15min", "1h", or a number of ticks) as integer ticks."""

from __future__ import annotations

import re

from preprocessing.errors import SpecError

_DURATION_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "sec": 1_000_000_000,
    "m": 60_000_000_000,
    "min": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}


def parse_duration(text: str | int | float, *, timestamp: bool) -> int:
    """Turn "90s", "1h", "15min" (or a bare number of ticks) into integer ticks.

    For timestamp time columns a tick is a nanosecond; for integer time columns a bare
    number is taken as is and unit suffixes are refused.
    """
    if isinstance(text, int | float):
        return int(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", str(text).lower())
    if not m:
        raise SpecError(f"cannot read duration {text!r}; write e.g. '90s', '15min', '1h', '1d' or a number")
    value, unit = float(m.group(1)), m.group(2)
    if not unit:
        return int(value)
    if unit not in _DURATION_UNITS_NS:
        raise SpecError(f"unknown duration unit {unit!r} in {text!r}; use one of {', '.join(_DURATION_UNITS_NS)}")
    if not timestamp:
        raise SpecError(f"duration {text!r} has a unit but the time column is an integer; give a plain number")
    return int(value * _DURATION_UNITS_NS[unit])
