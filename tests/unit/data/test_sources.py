"""Data sources: times parsed strictly in the declared format, files read in name order with the declared
types, the user's own `load_period` imported from the project and its failures named in one line, and
what materialise_period writes for each. Real files in tmp_path, nothing mocked."""

from __future__ import annotations

import copy
import importlib
import re
import sys
import textwrap
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlpipe.config import Params
from mlpipe.data.frames import INITIAL_FILE, data_files, materialise_period, read_frame
from mlpipe.data.sources import get_source, parse_times
from mlpipe.data.zone import user_source_file
from mlpipe.errors import ConfigError, DataError, MissingInput, MlpipeError

UTC = "datetime64[ns, UTC]"


def utc(*stamps: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(s, tz="UTC") for s in stamps]


# --- parse_times ------------------------------------------------------------------------------------


def test_iso_datetimes_with_offsets_become_utc():
    values = pd.Series(["2013-01-01T05:00:00-05:00", "2013-01-01T10:00:00Z", "2013-01-01 12:30:00+02:00"])
    parsed = parse_times(values, "datetime", "departure")
    assert str(parsed.dtype) == UTC
    assert parsed.tolist() == utc("2013-01-01 10:00", "2013-01-01 10:00", "2013-01-01 10:30")


def test_dates_are_utc_midnights():
    parsed = parse_times(pd.Series(["2013-01-01", "2013-12-31"]), "date", "day")
    assert str(parsed.dtype) == UTC
    assert parsed.tolist() == utc("2013-01-01", "2013-12-31")


@pytest.mark.parametrize(
    ("fmt", "value"),
    [("epoch_s", 1357016400), ("epoch_ms", 1357016400000), ("epoch_ms", 1357016400123)],
)
def test_epoch_numbers_are_2013_instants_not_1970(fmt, value):
    parsed = parse_times(pd.Series([value], dtype="int64"), fmt, "departure")
    assert str(parsed.dtype) == UTC
    millis = value % 1000 if fmt == "epoch_ms" else 0
    assert parsed.iloc[0] == pd.Timestamp("2013-01-01 05:00", tz="UTC") + pd.Timedelta(milliseconds=millis)


def test_epoch_numbers_written_as_text_parse_too():
    parsed = parse_times(pd.Series(["1357016400"]), "epoch_s", "departure")
    assert parsed.tolist() == utc("2013-01-01 05:00")


@pytest.mark.parametrize("fmt", ["datetime", "date"])
@pytest.mark.parametrize("values", [[1357016400, 1357020000], [1357016400.0, np.nan]])
def test_numbers_are_refused_unless_the_format_is_an_epoch(fmt, values):
    with pytest.raises(DataError) as caught:
        parse_times(pd.Series(values), fmt, "departure")
    message = str(caught.value)
    assert message.startswith("departure:")
    assert "epoch_s" in message and "1357016400" in message


@pytest.mark.parametrize("fmt", ["datetime", "date"])
@pytest.mark.parametrize("bad", ["2013-13-45", "soon"])
def test_a_string_that_does_not_parse_is_refused_naming_column_and_value(fmt, bad):
    good = "2013-01-01" if fmt == "date" else "2013-01-01T00:00:00Z"
    with pytest.raises(DataError) as caught:
        parse_times(pd.Series([good, bad, good]), fmt, "departure")
    message = str(caught.value)
    assert message.startswith("departure: 1 values do not parse")
    assert bad in message


def test_a_date_with_a_time_of_day_is_not_a_date():
    with pytest.raises(DataError, match="^day: .*2013-01-01 10:00"):
        parse_times(pd.Series(["2013-01-01 10:00"]), "date", "day")


@pytest.mark.parametrize(
    ("fmt", "values"),
    [
        ("datetime", ["2013-01-01T05:00:00Z", None, np.nan]),
        ("date", ["2013-01-01", None, np.nan]),
        ("epoch_s", [1357016400, None, np.nan]),
        ("epoch_ms", [1357016400000, None, np.nan]),
    ],
)
def test_nulls_stay_nat(fmt, values):
    parsed = parse_times(pd.Series(values, dtype=object), fmt, "departure")
    assert str(parsed.dtype) == UTC
    assert parsed.notna().tolist() == [True, False, False]
    assert parsed.iloc[0].year == 2013


def test_naive_datetimes_are_taken_as_utc_not_shifted():
    values = pd.Series(pd.to_datetime(["2013-01-01 05:00", None]))
    assert values.dt.tz is None
    parsed = parse_times(values, "datetime", "departure")
    assert str(parsed.dtype) == UTC
    assert parsed.iloc[0] == pd.Timestamp("2013-01-01 05:00", tz="UTC") and pd.isna(parsed.iloc[1])


def test_aware_datetimes_in_another_zone_are_converted_to_utc():
    values = pd.Series(pd.to_datetime(["2013-01-01 05:00"]).tz_localize("America/New_York"))
    parsed = parse_times(values, "datetime", "departure")
    assert str(parsed.dtype) == UTC
    assert parsed.tolist() == utc("2013-01-01 10:00")


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_microsecond_datetimes_come_back_as_nanosecond_utc_like_every_other_input(tz):
    values = pd.Series(
        pd.to_datetime(["2013-01-01 05:00"])
        .tz_localize(tz)
        .astype(f"datetime64[us{', ' + tz if tz else ''}]")
    )
    parsed = parse_times(values, "datetime", "departure")
    assert str(parsed.dtype) == UTC


def test_an_out_of_range_epoch_is_refused_without_telling_to_use_an_epoch_format():
    with pytest.raises(DataError) as caught:
        parse_times(pd.Series([1357016400000]), "epoch_s", "departure")
    message = str(caught.value)
    assert message.startswith("departure:") and "1357016400000" in message
    assert "numbers are times only" not in message


# --- the files source ----------------------------------------------------------------------------------


def source_params(params_dict: dict, dataset: dict) -> Params:
    """params.yaml with `dataset` replaced and the sections fitted to the small frames below: categorical
    `code`, `city`; numerical `x`, `n`; target `y`; time column `t` when the dataset names it."""
    d = copy.deepcopy(params_dict)
    d["dataset"] = {"target": "y", **dataset}
    d["features"] = {"categorical": ["code", "city"], "numerical": ["x", "n"], "leakage": []}
    d["validate"] = {
        "required_not_null": ["code", "y", *([dataset["time_column"]] if "time_column" in dataset else [])],
        "max_null_rate": 0.5,
        "ranges": {"x": {"min": 0}},
    }
    if "time_column" not in dataset:
        d["split"]["method"] = "random"
    return Params.model_validate(d)


def files_params(params_dict: dict, path: str = "raw/*", **dataset) -> Params:
    return source_params(params_dict, {"source": "files", "path": path, **dataset})


def frame(rows: range, times: list | None = None) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "row": list(rows),
            "code": [f"00{100 + i}" for i in rows],
            "city": ["NYC" if i % 2 else "BOS" for i in rows],
            "x": [i + 0.5 for i in rows],
            "n": list(rows),
            "y": [i % 2 for i in rows],
        }
    )
    if times is not None:
        df["t"] = times
    return df


def write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)


@pytest.fixture
def three_files(tmp_path) -> Path:
    """raw/ with two CSVs and one Parquet file, written out of name order, plus a file that is neither."""
    write_parquet(frame(range(5, 8)), tmp_path / "raw" / "c_3.parquet")
    write_csv(frame(range(2, 5)), tmp_path / "raw" / "b_2.csv")
    write_csv(frame(range(0, 2)), tmp_path / "raw" / "a_1.csv")
    (tmp_path / "raw" / "notes.txt").write_text("row,code\n99,1\n")
    return tmp_path


def test_files_are_read_in_name_order_csv_and_parquet_alike(params_dict, three_files):
    df = get_source(files_params(params_dict), three_files)(None, None)
    assert df["row"].tolist() == list(range(8))
    assert df.index.tolist() == list(range(8))


def test_files_keep_codes_as_text_and_numbers_as_float64(params_dict, three_files):
    df = get_source(files_params(params_dict), three_files)(None, None)
    assert df["code"].tolist() == [f"00{100 + i}" for i in range(8)]
    assert all(type(v) is str for v in df["code"]) and all(type(v) is str for v in df["city"])
    assert df["x"].dtype == "float64" and df["n"].dtype == "float64"
    assert df["n"].tolist() == [float(i) for i in range(8)]


def test_a_categorical_code_with_leading_zeros_stays_text_in_a_single_csv(params_dict, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "one.csv").write_text("code,city,x,n,y\n00123,001,1,2,0\n0042,,3.5,4,1\n")
    df = get_source(files_params(params_dict, path="raw/one.csv"), tmp_path)(None, None)
    assert df["code"].tolist() == ["00123", "0042"]
    assert df["city"].iloc[0] == "001" and df["city"].iloc[1] is None
    assert df["x"].tolist() == [1.0, 3.5] and df["x"].dtype == "float64"


def test_a_numerical_column_with_text_is_refused_naming_file_and_column(params_dict, tmp_path):
    write_csv(frame(range(2)), tmp_path / "raw" / "a_good.csv")
    bad = frame(range(2, 4)).astype({"x": object})
    bad.loc[1, "x"] = "zz"
    write_csv(bad, tmp_path / "raw" / "b_bad.csv")
    with pytest.raises(DataError) as caught:
        get_source(files_params(params_dict), tmp_path)(None, None)
    message = str(caught.value)
    assert message.startswith("b_bad.csv: x: 1 values are not numbers")
    assert "zz" in message


def test_the_period_keeps_the_utc_rows_of_start_up_to_but_not_including_end(params_dict, tmp_path):
    times = [
        "2013-01-01T01:00:00+02:00",  # 2012-12-31 23:00 UTC: before
        "2013-01-01T00:00:00Z",  # the first instant of the period
        "2013-01-15T12:00:00-05:00",
        "2013-01-31T23:59:59Z",
        "2013-01-31T20:00:00-05:00",  # 2013-02-01 01:00 UTC: after
        "2013-02-01T00:00:00Z",  # end: excluded
    ]
    write_csv(frame(range(0, 3), times[:3]), tmp_path / "raw" / "a.csv")
    write_parquet(frame(range(3, 6), times[3:]), tmp_path / "raw" / "b.parquet")
    params = files_params(
        params_dict, time_column="t", initial_period={"start": "2013-01-01", "end": "2013-02-01"}
    )
    period = params.dataset.initial_period
    df = get_source(params, tmp_path)(period.start, period.end)
    assert df["row"].tolist() == [1, 2, 3]
    assert str(df["t"].dtype) == UTC
    assert df["t"].tolist() == utc("2013-01-01 00:00", "2013-01-15 17:00", "2013-01-31 23:59:59")
    assert df.index.tolist() == [0, 1, 2]


def test_a_time_column_in_the_files_is_parsed_in_its_declared_format(params_dict, tmp_path):
    write_csv(frame(range(2), [1357016400000, 1359694800000]), tmp_path / "raw" / "a.csv")
    params = files_params(params_dict, time_column="t", time_format="epoch_ms")
    df = get_source(params, tmp_path)(None, None)
    assert df["t"].tolist() == utc("2013-01-01 05:00", "2013-02-01 05:00")


def test_a_time_column_missing_from_a_file_is_refused(params_dict, tmp_path):
    write_csv(frame(range(2)), tmp_path / "raw" / "a.csv")
    with pytest.raises(DataError, match="^a.csv: time column 't' missing"):
        get_source(files_params(params_dict, time_column="t"), tmp_path)(None, None)


def test_without_a_time_column_every_row_is_read_whatever_the_period(params_dict, three_files):
    load = get_source(files_params(params_dict), three_files)
    assert len(load(None, None)) == 8
    assert len(load(date(2013, 1, 1), date(2013, 1, 2))) == 8


def test_a_glob_that_matches_nothing_is_missing_input_naming_the_pattern(params_dict, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "notes.txt").write_text("not data")
    load = get_source(files_params(params_dict, path="raw/*.csv"), tmp_path)
    with pytest.raises(MissingInput, match=re.escape("dataset.path: 'raw/*.csv' matches no")):
        load(None, None)


def test_an_absolute_path_is_read_as_given(params_dict, three_files, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("project")
    df = get_source(files_params(params_dict, path=str(three_files / "raw" / "*.csv")), elsewhere)(None, None)
    assert df["row"].tolist() == list(range(5))


def test_a_project_root_with_brackets_in_its_name_still_finds_its_files(params_dict, tmp_path):
    root = tmp_path / "proj[1]"
    write_csv(frame(range(3)), root / "raw" / "a.csv")
    df = get_source(files_params(params_dict, path="raw/*.csv"), root)(None, None)
    assert df["row"].tolist() == [0, 1, 2]


# --- the user's own source --------------------------------------------------------------------------

MYSRC = """
import pandas as pd

CALLS = []


def load_period(start, end):
    CALLS.append((start, end))
    return pd.DataFrame(
        {
            "code": [123, 7, 42],
            "city": ["NYC", "BOS", None],
            "x": ["1.5", "2", None],
            "n": [1, 2, 3],
            "y": [0, 1, 0],
            "t": ["2013-01-05T00:00:00Z", "2013-01-31T23:00:00-05:00", "2013-01-20T10:00:00Z"],
        }
    )


def with_null_code(start, end):
    # codes 123 and 7 again, in a batch where one code is missing: pandas holds them as float64
    return pd.DataFrame({"code": [123, 7, None], "city": ["NYC", "BOS", "NYC"], "x": [1.0, 2.0, 3.0],
                         "n": [1, 2, 3], "y": [0, 1, 0], "t": ["2013-01-05T00:00:00Z"] * 3})


def boom(start, end):
    raise ValueError("no rows\\n  for this period")


def not_a_frame(start, end):
    return [{"code": "1"}]
"""


@pytest.fixture
def own_module(tmp_path):
    """Write modules into tmp_path (the project root); whatever the test imports from there, and the
    sys.path entry user_source adds, are removed afterwards."""
    names: list[str] = []
    saved_path = list(sys.path)

    def write(relpath: str, text: str) -> None:
        path = tmp_path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        name = relpath.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        names.extend(n for n in [name, name.split(".")[0]] if n not in names)
        for n in names:
            sys.modules.pop(n, None)
        importlib.invalidate_caches()

    yield write
    sys.path[:] = saved_path
    for name in names:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()


def own_params(params_dict: dict, source: str) -> Params:
    return source_params(
        params_dict,
        {
            "source": source,
            "time_column": "t",
            "initial_period": {"start": "2013-01-01", "end": "2013-02-01"},
        },
    )


def test_own_source_is_imported_from_the_project_and_its_frame_typed(params_dict, tmp_path, own_module):
    own_module("mysrc.py", MYSRC)
    load = get_source(own_params(params_dict, "mysrc:load_period"), tmp_path)
    assert str(tmp_path) in sys.path
    df = load(date(2013, 1, 1), date(2013, 2, 1))
    assert sys.modules["mysrc"].CALLS == [(date(2013, 1, 1), date(2013, 2, 1))]
    # 2013-01-31 23:00 -05:00 is February in UTC: outside the period, dropped.
    assert df["n"].tolist() == [1.0, 3.0] and df.index.tolist() == [0, 1]
    assert df["code"].tolist() == ["123", "42"] and df["city"].tolist() == ["NYC", None]
    assert df["x"].tolist()[0] == 1.5 and np.isnan(df["x"].tolist()[1])
    assert df["x"].dtype == "float64" and df["n"].dtype == "float64"
    assert str(df["t"].dtype) == UTC
    assert df["t"].tolist() == utc("2013-01-05", "2013-01-20 10:00")


def test_own_source_in_a_package_module(params_dict, tmp_path, own_module):
    own_module("mypkg/__init__.py", "")
    own_module("mypkg/loaders.py", MYSRC)
    df = get_source(own_params(params_dict, "mypkg.loaders:load_period"), tmp_path)(None, None)
    assert len(df) == 3 and df["code"].tolist() == ["123", "7", "42"]


def test_own_source_raising_is_a_one_line_data_error_naming_source_and_exception(
    params_dict, tmp_path, own_module
):
    own_module("mysrc.py", MYSRC)
    load = get_source(own_params(params_dict, "mysrc:boom"), tmp_path)
    with pytest.raises(DataError) as caught:
        load(date(2013, 1, 1), date(2013, 2, 1))
    message = str(caught.value)
    assert message == "dataset.source mysrc:boom: raised ValueError: no rows for this period"
    assert "\n" not in message


def test_an_integer_code_is_the_same_text_whether_or_not_its_batch_has_a_null(
    params_dict, tmp_path, own_module
):
    own_module("mysrc.py", MYSRC)
    without_null = get_source(own_params(params_dict, "mysrc:load_period"), tmp_path)(None, None)
    with_null = get_source(own_params(params_dict, "mysrc:with_null_code"), tmp_path)(None, None)
    assert without_null["code"].tolist()[:2] == ["123", "7"]
    assert with_null["code"].tolist() == ["123", "7", None]


def test_own_source_returning_no_frame_is_a_data_error(params_dict, tmp_path, own_module):
    own_module("mysrc.py", MYSRC)
    load = get_source(own_params(params_dict, "mysrc:not_a_frame"), tmp_path)
    with pytest.raises(
        DataError, match=r"^dataset.source mysrc:not_a_frame: returned list \(rule: .*DataFrame"
    ):
        load(date(2013, 1, 1), date(2013, 2, 1))


@pytest.mark.parametrize(
    ("source", "missing"),
    [("nosuchmod_mlpipe:load_period", "nosuchmod_mlpipe"), ("mysrc:no_such_function", "no_such_function")],
)
def test_own_source_that_cannot_be_imported_is_a_config_error(
    params_dict, tmp_path, own_module, source, missing
):
    own_module("mysrc.py", MYSRC)
    with pytest.raises(ConfigError) as caught:
        get_source(own_params(params_dict, source), tmp_path)
    message = str(caught.value)
    assert message.startswith(f"dataset.source: {source!r} cannot be imported")
    assert missing in message.split("cannot be imported", 1)[1]


def test_user_source_file_finds_the_project_module(tmp_path, own_module):
    own_module("mysrc.py", MYSRC)
    own_module("mypkg/__init__.py", "")
    own_module("mypkg/loaders.py", MYSRC)
    assert user_source_file("mysrc:load_period", tmp_path) == tmp_path / "mysrc.py"
    assert user_source_file("mypkg.loaders:load_period", tmp_path) == tmp_path / "mypkg" / "loaders.py"
    assert user_source_file("mypkg:load_period", tmp_path) == tmp_path / "mypkg" / "__init__.py"


@pytest.mark.parametrize("source", ["json:loads", "mlpipe.data.sources:get_source", "files", "nycflights13"])
def test_user_source_file_is_none_outside_the_project(tmp_path, own_module, source):
    own_module("mysrc.py", MYSRC)
    assert user_source_file(source, tmp_path) is None


# --- the SQL source without a server ---------------------------------------------------------------


def sql_params(params_dict: dict, env: str) -> Params:
    return source_params(
        params_dict,
        {
            "source": "sql",
            "query": "SELECT * FROM rows WHERE t >= :start AND t < :end",
            "url_env": env,
            "time_column": "t",
            "initial_period": {"start": "2013-01-01", "end": "2013-02-01"},
        },
    )


def test_a_malformed_sql_url_is_a_refusal_naming_the_variable(params_dict, monkeypatch):
    monkeypatch.setenv("MLPIPE_TEST_BAD_URL", "not a url")
    load = get_source(sql_params(params_dict, "MLPIPE_TEST_BAD_URL"), Path("."))
    with pytest.raises(MlpipeError, match="MLPIPE_TEST_BAD_URL"):
        load(date(2013, 1, 1), date(2013, 2, 1))


def test_an_unset_sql_url_is_a_config_error_naming_the_variable(params_dict, monkeypatch):
    monkeypatch.delenv("MLPIPE_TEST_UNSET_URL", raising=False)
    load = get_source(sql_params(params_dict, "MLPIPE_TEST_UNSET_URL"), Path("."))
    with pytest.raises(ConfigError, match=r"^\$MLPIPE_TEST_UNSET_URL: not set"):
        load(date(2013, 1, 1), date(2013, 2, 1))


# --- materialise_period ------------------------------------------------------------------------------


def test_a_source_without_time_column_becomes_one_initial_file_with_every_row(params_dict, three_files):
    params = files_params(params_dict)
    data_dir = three_files / "data"
    written = materialise_period(get_source(params, three_files), None, None, data_dir, None, "month")
    assert written == [data_dir / INITIAL_FILE] and INITIAL_FILE == "batch-0-initial.parquet"
    assert data_files(data_dir) == written
    df = read_frame(written[0])
    assert df["row"].tolist() == list(range(8))
    assert df["code"].tolist() == [f"00{100 + i}" for i in range(8)] and df["x"].dtype == "float64"


@pytest.mark.parametrize(
    ("start", "names"),
    [
        ("2013-01-01", ["batch-2013-01-01.parquet", "batch-2013-02-01.parquet", "batch-2013-03-01.parquet"]),
        ("2013-01-15", ["batch-2013-01-15.parquet", "batch-2013-02-01.parquet", "batch-2013-03-01.parquet"]),
    ],
)
def test_a_timed_source_becomes_one_file_per_month(params_dict, tmp_path, start, names):
    times = [
        "2013-01-20T00:00:00Z",
        "2013-03-02T00:00:00Z",
        "2013-01-31T23:00:00-05:00",  # February in UTC
        "2013-02-10T00:00:00Z",
        "2013-03-31T23:59:00Z",
        "2013-04-01T00:00:00Z",  # end of the period: not written
        "2013-01-10T00:00:00Z",  # before 2013-01-15
    ]
    write_csv(frame(range(7), times), tmp_path / "raw" / "rows.csv")
    params = files_params(
        params_dict,
        time_column="t",
        batch_freq="month",
        initial_period={"start": start, "end": "2013-04-01"},
    )
    period = params.dataset.initial_period
    data_dir = tmp_path / "data"
    written = materialise_period(
        get_source(params, tmp_path), period.start, period.end, data_dir, "t", "month"
    )
    assert [p.name for p in written] == names
    assert data_files(data_dir) == written
    rows = [read_frame(p)["row"].tolist() for p in written]
    first = [0, 6] if start == "2013-01-01" else [0]
    assert rows == [first, [2, 3], [1, 4]]
    assert all(str(read_frame(p)["t"].dtype) == UTC for p in written)


def test_a_new_file_matching_a_glob_source_is_named_until_it_is_taken_in(tmp_path):
    """The diamonds finding: a new file matching a Parquet glob was silently ignored ('nothing to train')."""
    import os

    from mlpipe.data.naming import files_not_taken_in

    raw, data, landing = tmp_path / "raw", tmp_path / "data", tmp_path / "landing"
    raw.mkdir()
    for name in ("d1.parquet", "d2.parquet"):
        (raw / name).write_bytes(b"x")
    assert files_not_taken_in("raw/*.parquet", tmp_path, data, [landing]) == []  # not bootstrapped yet
    data.mkdir()
    (data / "batch-0-initial.parquet").write_bytes(b"x")  # the bootstrap read d1 and d2
    os.utime(data / "batch-0-initial.parquet", (1e9, 1e9))
    for name in ("d1.parquet", "d2.parquet"):
        os.utime(raw / name, (9e8, 9e8))
    (raw / "d3.parquet").write_bytes(b"x")  # arrives after the bootstrap
    (raw / "notes.txt").write_text("not a batch")
    assert files_not_taken_in("raw/*.parquet", tmp_path, data, [landing]) == [raw / "d3.parquet"]
    landing.mkdir()
    (landing / "d3.parquet").write_bytes(b"x")  # `mlpipe ingest raw/d3.parquet`: waiting
    assert files_not_taken_in("raw/*.parquet", tmp_path, data, [landing]) == []
    (landing / "d3.parquet").rename(data / "d3.parquet")  # taken in
    assert files_not_taken_in("raw/*.parquet", tmp_path, data, [landing]) == []
    # Taken in under another name than its own: a second `d5` (data_names), a name of dots or spaces.
    for name, taken_as in (
        ("sub/d5.parquet", "d5-1.parquet"),
        ("my.data.v2.parquet", "my.data.v2.parquet"),
        ("my batch.parquet", "my-batch.parquet"),
    ):
        (raw / name).parent.mkdir(exist_ok=True)
        (raw / name).write_bytes(b"x")
        assert files_not_taken_in("raw/**/*.parquet", tmp_path, data, [landing]) == [raw / name]
        (data / taken_as).write_bytes(b"x")
        os.utime(data / taken_as, (1e9, 1e9))
        assert files_not_taken_in("raw/**/*.parquet", tmp_path, data, [landing]) == []
    (raw / "d4.parquet").write_bytes(b"x")
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    (quarantine / "d4.1.parquet").write_bytes(b"x")  # refused, kept beside an earlier d4
    assert files_not_taken_in("raw/*.parquet", tmp_path, data, [landing, quarantine]) == []
