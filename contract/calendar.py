"""Calendar features from the time column: sin/cos pairs of the time of day, week, year.

One definition, shared by the Beam job (numpy, when it writes windows), the doctor (numpy,
on raw rows) and the exported model (TensorFlow, from raw timestamps at serving time), so
a served model sees exactly the values it was trained on. Written with integer `//` and
`%` (floor semantics in numpy and TensorFlow alike) plus an `ops` namespace for `sin`,
`cos` and the cast to float, so the same lines run on numpy arrays and on tensors.

Ticks are nanoseconds since the epoch, as the job stores them: for a naive timestamp
column that is the wall-clock time as written; a timezone-aware column is read as UTC.

    hour       time of day, minutes and seconds included: phase = seconds into the day / 86,400
    dayofweek  Monday = 0 ... Sunday = 6:                   phase = day / 7
    dayofyear  1 January = 0, in that year's length:       phase = day / 365 (366 in leap years)
    month      January = 0 ... December = 11:               phase = month / 12

Each part gives two columns, `<part>_sin` = sin(2π·phase) and `<part>_cos` = cos(2π·phase):
values in [-1, 1], never scaled, and continuous across midnight, the week and the new year.
"""

from __future__ import annotations

import math

import numpy as np

PARTS = ("hour", "dayofweek", "dayofyear", "month")
NS_PER_DAY = 86_400 * 10**9


PERIOD_DAYS = {"hour": 1.0, "dayofweek": 7.0, "dayofyear": 365.25, "month": 365.25}


def uncovered(parts, train_span_ns: int) -> list[tuple[str, float]]:
    """(part, fraction of one cycle) for each part whose cycle the training range does not cover.

    A model never sees the sin/cos pairs of the uncovered phases during training, and
    validation and test then ask it to extrapolate (a year of hourly data split 70/30 has
    never seen October with `dayofyear`).
    """
    return [(p, train_span_ns / (PERIOD_DAYS[p] * NS_PER_DAY)) for p in parts
            if train_span_ns < PERIOD_DAYS[p] * NS_PER_DAY]


def coverage_note(parts, train_span_ns: int) -> str:
    """'' or "the training range covers only 70% of a dayofyear cycle" (the job's log and the doctor)."""
    short = uncovered(parts, train_span_ns)
    return "the training range covers only " + ", ".join(f"{f:.0%} of a {p} cycle" for p, f in short) if short else ""


def column_names(parts) -> tuple[str, ...]:
    """The feature columns of the calendar parts, in order: hour_sin, hour_cos, ..."""
    return tuple(f"{p}_{f}" for p in parts for f in ("sin", "cos"))


class NumpyOps:
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)

    @staticmethod
    def to_float(a):
        return np.asarray(a).astype(np.float64)


def _divides(k: int, y):
    """1 where k divides y, else 0 (integer arithmetic only, so numpy and tensors alike)."""
    return 1 - ((y % k) + k - 1) // k


def _civil(days):
    """(year, month 1..12, 0-based day of year, days in that year) of days since 1970-01-01.

    Howard Hinnant's days-to-civil algorithm (proleptic Gregorian), in integer `//` and
    `%` only: no comparisons or `where`, whose dtypes differ between numpy and TensorFlow.
    """
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy_march = doe - (365 * yoe + yoe // 4 - yoe // 100)  # 0 = 1 March
    mp = (5 * doy_march + 2) // 153  # 0 = March ... 11 = February
    month = mp + 3 - 12 * (mp // 10)
    jan_feb = (12 - month) // 10  # 1 for January and February (they belong to the next year)
    year = yoe + era * 400 + jan_feb
    leap = _divides(4, year) - _divides(100, year) + _divides(400, year)
    doy = doy_march + 59 + leap - jan_feb * (365 + leap)
    return year, month, doy, 365 + leap


def phases(ticks, parts, ops=NumpyOps) -> list:
    """Phase in [0, 1) of each part for int64 ns ticks (numpy array or int64 tensor)."""
    days = ticks // NS_PER_DAY
    out = []
    civil = None
    for p in parts:
        if p == "hour":
            out.append(ops.to_float(ticks - days * NS_PER_DAY) / NS_PER_DAY)
        elif p == "dayofweek":
            out.append(ops.to_float((days + 3) % 7) / 7.0)  # 1970-01-01 was a Thursday (3)
        else:
            civil = civil or _civil(days)
            _, month, doy, length = civil
            out.append(ops.to_float(doy) / ops.to_float(length) if p == "dayofyear" else ops.to_float(month - 1) / 12.0)
    return out


def values(ticks, parts, ops=NumpyOps) -> list:
    """The calendar columns (column_names(parts) order) as float64 arrays or tensors."""
    out = []
    for ph in phases(ticks, parts, ops):
        angle = 2.0 * math.pi * ph
        out += [ops.sin(angle), ops.cos(angle)]
    return out


def matrix(ticks: np.ndarray, parts) -> np.ndarray:
    """[n, 2·len(parts)] float64 calendar columns of numpy ticks."""
    ticks = np.asarray(ticks, dtype=np.int64)
    if not parts:
        return np.zeros((len(ticks), 0))
    return np.column_stack(values(ticks, parts))
