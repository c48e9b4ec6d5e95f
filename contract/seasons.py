"""A time step's season and the look-back that reaches it (shared by preprocessing, the doctor
and evaluation).

An LSTM sees only its window. When the target repeats every S rows (a day of hourly rows, a
week of daily rows), the most useful inputs are the same time one season back and the row
before it: together they give the change the target made a season ago, which a window of
exactly S rows leaves out (measured on hourly city temperatures: a linear model on 24 rows
misses the next hour by 0.21 degrees, on 25 rows by 0.07, on 48 by 0.06; BENCHMARKS.md).
"""

from __future__ import annotations

DAY_NS = 86_400_000_000_000
WEEK_NS = 7 * DAY_NS
DEFAULT_LOOK_BACK = 24  # --look-back auto when the time step names no season (integer time, irregular steps)
MAX_AUTO_LOOK_BACK = 336  # two weeks of hourly rows; a longer season gets the default


def season_length(time_kind: str, step: int | None, given: int = 0) -> int | None:
    """Rows per season: `given`, else a day for sub-daily steps, a week for daily, a year for weekly."""
    if given:
        return given
    if time_kind != "timestamp" or not step:
        return None
    if step < DAY_NS and DAY_NS % step == 0:
        return DAY_NS // step
    if step == DAY_NS:
        return 7
    if step == WEEK_NS:
        return 52
    return None


def reaching_look_back(season: int) -> int:
    """The shortest look-back whose window holds the last input's row one season back (and so
    the target's own time one season back too, for any horizon up to a season)."""
    return season + 1


def auto_look_back(season: int | None) -> tuple[int, str]:
    """(look-back, why) for `--look-back auto`: a season and a row where that fits a window, else
    the default (a minute step's day is 1,440 rows: aggregate first, or give --look-back).

    Why not two seasons, as the tree baseline's lags: on validation (BENCHMARKS.md, "The
    look-back") two seasons helped hourly city temperatures a little more (0.17x the loss of 24
    rows, against 0.21x) but cost hourly household power 1.9% over three seeds where a season
    and a row cost nothing, and a window twice as long costs the LSTM twice the time per step.
    """
    if not season:
        return DEFAULT_LOOK_BACK, "the time step names no season"
    if reaching_look_back(season) <= MAX_AUTO_LOOK_BACK:
        return reaching_look_back(season), f"a season of {season} rows and a row"
    return DEFAULT_LOOK_BACK, (f"a season of {season} rows is longer than {MAX_AUTO_LOOK_BACK} rows (aggregate the "
                               "rows to a coarser step, or give --look-back)")
