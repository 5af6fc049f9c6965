"""Profiling proposes params.yaml sections from a table: task, features, exclusions and validation rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from mlpipe.data.profiling import infer_task, null_rate_limit, physical_limit, propose
from mlpipe.errors import ConfigError


def _iris_named() -> pd.DataFrame:
    bunch = load_iris(as_frame=True)
    return bunch.frame.assign(target=bunch.frame["target"].map(dict(enumerate(bunch.target_names))))


def _small(n: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], n),
            "size": rng.uniform(1, 10, n).round(2),
            "y": rng.choice(["yes", "no"], n),
        }
    )


def test_penguins_species_is_multiclass_with_text_and_numeric_features():
    penguins = pytest.importorskip("palmerpenguins").load_penguins()
    p = propose(penguins, "species")
    assert p.task == "multiclass"
    assert p.categorical == ["island", "sex"]
    assert p.numerical == ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
    assert p.leakage == []
    assert p.required_not_null == ["species"]  # features may be null: the model imputes
    assert p.ranges == {}  # year 2007..2009, body mass 2700..6300: what the sample saw, never a limit
    assert p.max_null_rate == 0.6


def test_penguins_body_mass_is_regression_with_a_target_range():
    penguins = pytest.importorskip("palmerpenguins").load_penguins()
    p = propose(penguins, "body_mass_g")
    assert p.task == "regression"
    assert "body_mass_g" not in p.numerical
    assert p.ranges == {}  # 2700..6300 is what the sample saw, no limit


def test_diabetes_is_regression_and_ranges_cover_features_and_target():
    df = load_diabetes(as_frame=True).frame
    p = propose(df, "target")
    assert p.task == "regression"
    assert p.reasons[0] == "task regression: target 'target' is float64 with 214 distinct values"
    assert p.numerical == [c for c in df.columns if c != "target"] and p.categorical == [] and p.leakage == []
    assert p.ranges == {"target": {"min": 0.0}}  # 25..346: never negative; the centred features: no limit
    assert any(r.startswith("limit 'target' >= 0: never negative") for r in p.reasons)


def test_breast_cancer_is_binary_without_a_target_range():
    df = load_breast_cancer(as_frame=True).frame
    p = propose(df, "target")
    assert p.task == "binary"
    assert len(p.numerical) == 30 and p.leakage == []
    assert "target" not in p.ranges
    assert p.ranges and all(r == {"min": 0.0} for r in p.ranges.values())  # sizes, never negative
    assert p.required_not_null == ["target"]


def test_iris_with_string_labels_is_multiclass():
    p = propose(_iris_named(), "target")
    assert p.task == "multiclass"
    assert p.reasons[0] == "task multiclass: target 'target' is object with 3 distinct values"
    assert len(p.numerical) == 4 and p.leakage == []
    assert p.ranges["petal width (cm)"] == {"min": 0.0}  # 0.1..2.5: a size
    assert "sepal width (cm)" not in p.ranges  # 2.0..4.4 never nears 0: no limit can be justified


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0, 1] * 10, "binary"),
        ([1, 2, 3, 4, 5] * 4, "multiclass"),
        (list(range(25)), "regression"),
        ([1.0, 2.0, 3.0] * 5, "multiclass"),
        ([0.5, 1.5] * 10, "regression"),
        ([True, False] * 5, "binary"),
        (pd.Categorical(["a", "b", "c"] * 3), "multiclass"),
    ],
)
def test_infer_task(values, task):
    assert infer_task(pd.Series(values, name="t"))[0] == task


def test_constant_target_is_refused():
    with pytest.raises(ConfigError, match="target 't': 1 distinct value"):
        infer_task(pd.Series([3, 3, 3], name="t"))


def test_identifier_and_high_cardinality_text_are_excluded():
    df = _small().assign(
        row=np.arange(30) * 7,  # integer, unique per row, not named like an id
        code=[f"C{i:03d}" for i in range(30)],
        note=[f"note {i % 20}" for i in range(30)],  # 20 distinct of 30 rows
    )
    p = propose(df, "y")
    assert p.leakage == ["row", "code", "note"]
    assert "excluded 'row': an identifier (unique per row)" in p.reasons
    assert "excluded 'code': an identifier (unique per row)" in p.reasons
    assert "excluded 'note': high-cardinality text (20 distinct of 30 rows)" in p.reasons
    assert p.categorical == ["colour"] and p.numerical == ["size"]


def test_unique_floats_are_measurements_not_identifiers():
    p = propose(_small(), "y")
    assert "size" in p.numerical  # 30 distinct floats of 30 rows: neither an id nor "pure" by chance
    assert p.leakage == []


def test_always_null_and_timestamps_are_excluded_but_the_time_column_is_not():
    df = _small().assign(
        empty=np.nan,
        booked=pd.date_range("2024-01-01", periods=30, freq="D"),
        at=pd.date_range("2024-02-01", periods=30, freq="h"),
    )
    p = propose(df, "y", time_column="at")
    assert p.leakage == ["empty", "booked"]
    assert "excluded 'empty': always null" in p.reasons
    assert "excluded 'booked': a timestamp, not a feature; derive parts of it yourself" in p.reasons
    assert "at" in p.required_not_null and "at" not in p.categorical + p.numerical + p.leakage


def test_a_column_that_determines_the_class_is_leakage():
    df = _small()
    df["outcome_code"] = df["y"].map({"yes": "Y1", "no": "N0"})
    p = propose(df, "y")
    assert p.leakage == ["outcome_code"]
    assert "excluded 'outcome_code': likely leakage: determines the target (purity 1.0)" in p.reasons
    assert p.categorical == ["colour"]


def test_a_numeric_copy_of_a_numeric_target_is_leakage():
    rng = np.random.default_rng(1)
    y = rng.uniform(0, 100, 40)
    df = pd.DataFrame({"x": rng.normal(size=40), "y_cm": y * 100 + rng.normal(0, 1, 40), "y": y})
    p = propose(df, "y")
    assert p.task == "regression"
    assert p.leakage == ["y_cm"] and p.numerical == ["x"]
    assert "excluded 'y_cm': likely leakage: |corr| 1.00 with the target" in p.reasons


def test_float_target_with_task_binary_is_refused():
    df = pd.DataFrame({"a": [1, 2, 3], "x": [23.5, 20.0, 23.5]})
    msg = (
        "target 'x': fractional values (e.g. 23.5) cannot be classes "
        "(rule: a measured quantity is task: regression)"
    )
    with pytest.raises(ConfigError) as err:
        propose(df, "x", task="binary")
    assert str(err.value) == msg
    with pytest.raises(ConfigError, match="fractional values"):
        propose(df, "x", task="multiclass")


def test_three_classes_with_task_binary_is_refused():
    df = pd.DataFrame({"a": range(6), "y": ["a", "b", "c"] * 2})
    with pytest.raises(
        ConfigError, match=r"target 'y': 3 classes with task binary \(rule: binary has two; use"
    ):
        propose(df, "y", task="binary")


def test_regression_on_a_text_target_is_refused():
    with pytest.raises(ConfigError, match="cannot be task regression"):
        propose(_small(), "y", task="regression")


def test_a_given_task_that_fits_is_kept():
    df = pd.DataFrame({"a": np.arange(50) % 3, "y": np.arange(50) % 25})
    assert propose(df, "y").task == "regression"
    p = propose(df, "y", task="multiclass")
    assert p.task == "multiclass" and p.reasons[0] == "task multiclass: given; target 'y' has 25 classes"


def test_missing_target_or_time_column_is_refused_with_the_columns():
    with pytest.raises(
        ConfigError, match="target 'late': not a column of the data \\(columns: colour, size, y\\)"
    ):
        propose(_small(), "late")
    with pytest.raises(ConfigError, match="time column 'when': not a column"):
        propose(_small(), "y", time_column="when")


def test_physical_limits_are_written_only_where_the_profile_justifies_them():
    n = 40
    flag = pd.Series([0, 1] * (n // 2))
    assert physical_limit(flag) == ({"min": 0.0, "max": 1.0}, "a 0/1 flag: 0 or 1")
    share = pd.Series(np.linspace(0.01, 0.98, n))
    assert physical_limit(share)[0] == {"min": 0.0, "max": 1.0}
    assert physical_limit(pd.Series(np.linspace(0.2, 0.7, n))) is None  # a part of [0, 1] only: no share
    price = pd.Series(np.linspace(326, 18823, n))
    assert physical_limit(price)[0] == {"min": 0.0}  # reaches near 0: never negative
    assert physical_limit(pd.Series(np.linspace(43, 79, n))) is None  # a depth of 43..79: nothing justified
    assert physical_limit(pd.Series(np.linspace(-5, 30, n))) is None  # a temperature
    assert physical_limit(pd.Series([3.0] * n)) is None and physical_limit(price.head(5)) is None


def test_a_diamonds_like_table_gets_no_observed_maximum_as_a_limit():
    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame(
        {
            "carat": rng.uniform(0.2, 3.0, n).round(2),
            "depth": rng.uniform(55, 70, n).round(1),
            "is_ideal": rng.integers(0, 2, n),
            "price": rng.integers(326, 9360, n),
        }
    )
    p = propose(df, "price")
    assert p.ranges == {"carat": {"min": 0.0}, "is_ideal": {"min": 0.0, "max": 1.0}, "price": {"min": 0.0}}
    assert not any("max" in r and r["max"] > 1 for r in p.ranges.values())  # 9360 is never a limit
    assert any(r.startswith("every other range is an expectation") for r in p.reasons)


def test_required_not_null_and_max_null_rate_follow_the_observed_nulls():
    df = _small()
    df.loc[:8, "size"] = np.nan  # 9 of 30 rows: 0.3
    df.loc[0, "colour"] = None
    p = propose(df, "y")
    assert p.required_not_null == ["y"]
    assert p.max_null_rate == 0.6
    df.loc[3, "y"] = None
    assert propose(df, "y").required_not_null == []  # a target with nulls: those rows are left out
    df.loc[:23, "size"] = np.nan  # 0.8
    assert propose(df, "y").max_null_rate == 0.9
    assert null_rate_limit([0.95]) == 1.0 and null_rate_limit([]) == 0.6


def test_column_order_follows_the_frame():
    df = _small()[["size", "y", "colour"]].assign(b=np.arange(30) % 4 * 1.5, a=list("pq") * 15)
    p = propose(df, "y")
    assert p.numerical == ["size", "b"] and p.categorical == ["colour", "a"]
    assert list(p.ranges) == ["b"]  # 0..4.5 reaches 0; size 1..10 does not
    assert p.required_not_null == ["y"]


def _dated(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.Series(pd.date_range("2012-11-01", periods=n, freq="1D", tz="UTC"))
    month = times.dt.month.to_numpy().copy()
    month[:3] = [5, 6, 7]  # a few rows disagree (a local-time column beside a UTC time, say)
    return pd.DataFrame(
        {
            "at": times,
            "year": times.dt.year,
            "month": month,
            "yday": times.dt.dayofyear,
            "day": times.dt.day,
            "noise": rng.integers(1, 13, n),  # month-like values, unrelated to the time
            "y": rng.normal(size=n),
        }
    )


def test_growing_parts_of_the_time_column_are_excluded_with_the_reason_and_cycling_ones_stay():
    p = propose(_dated(), "y", "at")
    assert p.numerical == ["day", "noise"]
    assert p.leakage == ["year", "month", "yday"]
    month = next(r for r in p.reasons if r.startswith("excluded 'month'"))
    assert "the time column's month (equal in 99% of rows)" in month and "time passing alone" in month
    assert any(r.startswith("excluded 'yday': the time column's day of the year") for r in p.reasons)


def test_without_a_time_column_calendar_columns_are_ordinary_features():
    p = propose(_dated().drop(columns=["at"]), "y")
    assert p.numerical == ["year", "month", "yday", "day", "noise"]


def test_a_column_that_tracks_the_time_is_excluded_as_a_time_proxy():
    df = _dated()
    at = df["at"]
    df["decimal_year"] = at.dt.year + (at.dt.dayofyear - 1) / 365.25  # the hotel table's arrival_date_num
    df["epoch"] = at.astype("int64") // 10**9 + np.arange(len(df)) % 7  # a running counter, not unique
    df["epoch"] = df["epoch"] // 100
    p = propose(df, "y", "at")
    assert "decimal_year" in p.leakage and "epoch" in p.leakage
    assert p.numerical == ["day", "noise"]
    why = next(r for r in p.reasons if r.startswith("excluded 'decimal_year'"))
    assert "tracks the time column (|rank corr| 1.00 >= 0.9)" in why
    assert "decimal_year" in propose(df.drop(columns=["at"]), "y").numerical  # no time column: a feature


def test_a_phase_of_the_period_is_excluded_and_recurring_values_stay():
    """Bikeshare's finding: over January-April, `season` (1, then 2) and the month's name ('Jan'..'Apr') each
    hold over one stretch of time; every later month brings a value training never saw."""
    at = pd.Series(pd.date_range("2011-01-01", "2011-04-30 23:00", freq="1h", tz="UTC"))
    n = len(at)
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {
            "at": at,
            "season": np.where(at.dt.month <= 3, 1, 2),
            "mnth": at.dt.strftime("%b"),
            "hr": at.dt.hour,  # recurs every day
            "holiday": (at.dt.strftime("%m-%d").isin(["01-17", "02-21", "04-15"])).astype(int),
            "new_year": (at.dt.dayofyear == 1).astype(int),  # one short stretch: under 2% of the rows
            "temp": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )
    p = propose(df, "y", "at")
    assert p.leakage == ["season", "mnth"]
    assert p.numerical == ["hr", "holiday", "new_year", "temp"]
    why = next(r for r in p.reasons if r.startswith("excluded 'mnth'"))
    assert "a phase of the time column (4 values, each over one stretch of time)" in why


def _loans(n: int = 200) -> pd.DataFrame:
    """95% good, 5% bad."""
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {"amount": rng.uniform(1, 50, n).round(1), "status": ["bad"] * (n // 20) + ["good"] * (n - n // 20)}
    )


def test_the_minority_class_of_a_binary_target_is_proposed_as_positive_with_the_rule():
    p = propose(_loans(), "status")
    assert p.task == "binary" and p.positive_class == "bad"
    assert (
        "positive class 'bad': the minority class (5.0% of rows); set dataset.positive_class to change"
        in p.reasons
    )


def test_a_tie_keeps_the_sorted_last_label_and_numbers_stay_numbers():
    even = pd.DataFrame({"x": np.arange(40.0) % 7, "y": [0, 1] * 20})
    assert propose(even, "y").positive_class == 1
    mostly_one = pd.DataFrame({"x": np.arange(40.0) % 7, "y": [0] * 5 + [1] * 35})
    assert propose(mostly_one, "y").positive_class == 0
    with_nulls = mostly_one.assign(y=mostly_one["y"].astype("float64").where(mostly_one.index != 39))
    assert type(propose(with_nulls, "y").positive_class) is int  # 0.0 read from a column with nulls is 0


def test_a_given_positive_class_is_matched_by_its_text_and_refused_when_not_a_label():
    assert propose(_loans(), "status", positive="good").positive_class == "good"
    assert (
        propose(pd.DataFrame({"x": np.arange(40.0) % 7, "y": [0, 1] * 20}), "y", positive="0").positive_class
        == 0
    )
    with pytest.raises(
        ConfigError, match=r"positive class 'defaulted': not a label of target 'status' \(labels: bad, good"
    ):
        propose(_loans(), "status", positive="defaulted")
    with pytest.raises(ConfigError, match="only binary"):
        propose(_iris_named(), "target", positive="setosa")


def test_a_multiclass_or_regression_proposal_has_no_positive_class():
    assert propose(_iris_named(), "target").positive_class is None
    assert not any(r.startswith("positive class") for r in propose(_iris_named(), "target").reasons)
