"""Validation: every broken rule is reported with its column, rule and exact row count; clean data passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlpipe.data.frames import read_chunks, read_frame, write_frame
from mlpipe.data.validation import (
    QUANTILES,
    Violation,
    null_rate_violations,
    profile_frame,
    render_report,
    validate_chunks,
    validate_frame,
    violations_as_dicts,
)
from mlpipe.errors import DataValidationError
from mlpipe.pipeline.stages.split import part_summary


def test_clean_batch_has_no_violations(flights, params):
    assert validate_frame(flights, params) == []


def test_extra_columns_are_allowed(flights, params):
    assert validate_frame(flights.assign(unused="x"), params) == []


def test_missing_required_column_is_reported_once(flights, params):
    violations = validate_frame(flights.drop(columns=["dest"]), params)
    assert violations == [Violation("dest", "required column is missing", 1)]


def test_text_in_a_numeric_column_is_reported_as_not_convertible(flights, params):
    df = flights.astype({"distance": object})
    df.loc[2, "distance"] = "far"
    violations = validate_frame(df, params)
    assert len(violations) == 1
    v = violations[0]
    assert (v.column, v.count, v.examples) == ("distance", 1, ("far",))
    assert v.rule.startswith("not convertible to") and "float64" in v.rule


def test_null_in_a_required_column_is_reported(flights, params):
    df = flights.copy()
    df.loc[[2, 5], "carrier"] = None
    assert validate_frame(df, params) == [Violation("carrier", "null where none are allowed", 2, ("None",))]


def test_missing_target_is_reported_as_a_null(flights, params):
    df = flights.astype({"late": "float64"})
    df.loc[0, "late"] = np.nan
    violations = validate_frame(df, params)
    assert [(v.column, v.rule, v.count) for v in violations] == [("late", "null where none are allowed", 1)]


def test_negative_distance_breaks_the_min_rule_with_exact_count(flights, params):
    df = flights.copy()
    df.loc[[1, 3], "distance"] = -5
    assert validate_frame(df, params) == [Violation("distance", "below min 1.0", 2, ("-5.0",))]


def test_values_above_max_are_reported_with_examples(flights, params):
    df = flights.copy()
    df.loc[[0, 1, 2, 3], "hour"] = [24, 25, 26, 99]
    (v,) = validate_frame(df, params)
    assert (v.column, v.rule, v.count) == ("hour", "above max 23.0", 4)
    assert v.examples == ("24.0", "25.0", "26.0")  # at most three shown


def test_values_on_the_range_bounds_are_valid(flights, params):
    df = flights.copy()
    df.loc[0, "distance"] = 1
    df.loc[1, "distance"] = 6000
    df.loc[2, "humid"] = 0
    df.loc[3, "humid"] = 100
    assert validate_frame(df, params) == []


def test_empty_category_is_reported(flights, params):
    df = flights.copy()
    df.loc[4, "origin"] = ""
    assert validate_frame(df, params) == [Violation("origin", "empty string", 1, ("",))]


def test_null_rate_above_the_maximum_fails_an_optional_column(flights, params):
    df = flights.copy()
    df.loc[0:7, "temp"] = np.nan  # 8 of 12 rows
    assert params.validate_.max_null_rate == 0.6
    assert validate_frame(df, params) == [Violation("temp", "null rate 0.667 above max 0.6", 8)]


def test_null_rate_at_the_maximum_is_allowed(make_frame, params):
    df = make_frame(10)
    df.loc[list(range(6)), "visib"] = np.nan  # exactly 0.6
    assert validate_frame(df, params) == []


def test_null_rate_rule_judges_counts_over_all_rows():
    assert null_rate_violations({"a": 2, "b": 1}, 3, 0.5) == [
        Violation("a", "null rate 0.667 above max 0.5", 2)
    ]
    assert null_rate_violations({"a": 0, "b": 0}, 0, 0.0) == []


def test_chunked_validation_reports_what_the_whole_frame_does(flights, params):
    df = flights.copy()
    df.loc[[1, 3, len(df) - 2], "distance"] = -5
    df.loc[[0, len(df) - 1], "carrier"] = None
    df.loc[list(range(len(df) // 2, len(df))), "temp"] = np.nan  # all nulls in the second chunk only
    half = len(df) // 2
    whole = validate_frame(df, params)
    chunked = validate_chunks([df.iloc[:half], df.iloc[half:]], params)
    assert chunked == whole
    assert {(v.column, v.count) for v in whole} == {("distance", 3), ("carrier", 2)}


def test_chunked_validation_counts_a_missing_column_once(flights, params):
    df = flights.drop(columns=["dest"])
    assert validate_chunks([df.iloc[:5], df.iloc[5:]], params) == [
        Violation("dest", "required column is missing", 1)
    ]


def test_empty_batch_is_refused(flights, params):
    violations = validate_frame(flights.iloc[:0], params)
    assert Violation("<frame>", "no rows", 0) in violations


def test_every_broken_rule_is_reported_together(flights, params):
    df = flights.drop(columns=["weekday"])
    df.loc[1, "distance"] = -5
    df.loc[2, "wind_dir"] = 400
    df.loc[3, "carrier"] = None
    got = {(v.column, v.rule, v.count) for v in validate_frame(df, params)}
    assert got == {
        ("weekday", "required column is missing", 1),
        ("distance", "below min 1.0", 1),
        ("wind_dir", "above max 360.0", 1),
        ("carrier", "null where none are allowed", 1),
    }


def test_validation_error_names_column_rule_and_count(flights, params):
    df = flights.copy()
    df.loc[[1, 3], "distance"] = -5
    df.loc[4, "distance"] = 7000
    error = DataValidationError(validate_frame(df, params))
    message = str(error)
    assert message.startswith("data validation failed:")
    assert "distance: below min 1.0: 2 offending (e.g. -5.0)" in message
    assert "distance: above max 6000.0: 1 offending (e.g. 7000.0)" in message
    assert len(error.violations) == 2
    with pytest.raises(DataValidationError, match="distance: below min 1.0: 2"):
        raise error


def test_violation_message_without_examples():
    assert (
        Violation("dest", "required column is missing", 1).message()
        == "dest: required column is missing: 1 offending"
    )


def test_violation_message_names_the_batch_it_came_from():
    v = Violation("temp", "below min -60.0", 1, ("-99.0",), source="batch-2013-04.parquet")
    assert v.message() == "batch-2013-04.parquet: temp: below min -60.0: 1 offending (e.g. -99.0)"


def test_violations_serialise_as_plain_dicts():
    (d,) = violations_as_dicts([Violation("temp", "below min -60.0", 1, ("-99.0",))])
    assert isinstance(d, dict)
    assert (d["column"], d["rule"], d["count"], tuple(d["examples"])) == (
        "temp",
        "below min -60.0",
        1,
        ("-99.0",),
    )


def test_profile_records_rows_target_rate_and_time_span(flights, params):
    profile = profile_frame(flights, params)
    assert profile["rows"] == 12
    assert profile["target"] == "late"
    assert profile["target_rate"] == round(float(flights["late"].mean()), 6)
    assert profile["time_column"] == "time_hour"
    assert profile["time_min"] == "2013-01-01 05:00:00+00:00"
    assert profile["time_max"] == "2013-01-01 16:00:00+00:00"
    assert set(profile["columns"]) == {*params.features.columns, "late"}


def test_profile_of_a_numerical_column(flights, params):
    df = flights.copy()
    df["distance"] = [100.0, 200.0, 300.0, np.nan] * 3
    col = profile_frame(df, params)["columns"]["distance"]
    assert col["kind"] == "numerical"
    assert col["null_rate"] == 0.25
    assert (col["min"], col["max"], col["mean"]) == (100.0, 300.0, 200.0)
    assert list(col["quantiles"]) == [str(q) for q in QUANTILES]
    assert col["quantiles"]["0.5"] == 200.0
    assert col["quantiles"]["0.25"] == 100.0


def test_profile_of_a_categorical_column_counts_categories(flights, params):
    df = flights.copy()
    df["origin"] = ["JFK"] * 6 + ["EWR"] * 4 + [None] * 2
    col = profile_frame(df, params)["columns"]["origin"]
    assert col["kind"] == "categorical"
    assert col["categories"] == {"EWR": 4, "JFK": 6}
    assert col["n_unique"] == 2
    assert col["null_rate"] == pytest.approx(2 / 12)


def test_profile_marks_the_target(flights, params):
    col = profile_frame(flights, params)["columns"]["late"]
    assert col["kind"] == "target"
    assert (col["min"], col["max"]) == (0.0, 1.0)


def test_profile_of_an_all_null_column_has_no_statistics(flights, params):
    col = profile_frame(flights.assign(precip=np.nan), params)["columns"]["precip"]
    assert col["null_rate"] == 1.0
    assert col["min"] is None and col["mean"] is None and col["quantiles"] == {}


def test_report_of_a_failed_batch_lists_the_broken_rules(flights, params):
    violations = [Violation("distance", "below min 1.0", 2, ("-5.0",))]
    report = render_report(profile_frame(flights, params), violations, "batch-2013-04")
    assert report.startswith("# Validation report: batch-2013-04\n")
    assert "**FAILED**: 1 rule(s) broken." in report
    assert "| distance | below min 1.0 | 2 | -5.0 |" in report
    assert "PASSED" not in report


def test_report_of_a_clean_batch_passes_and_shows_the_profile(flights, params):
    report = render_report(profile_frame(flights, params), [], "data/")
    assert "**PASSED**: every rule holds." in report
    assert "FAILED" not in report
    assert "Rows: 12" in report
    assert "| carrier | categorical | 0.0000 |" in report
    assert "| late | target | 0.0000 | 0.0 |" in report


def test_report_without_a_profile_has_only_the_verdict():
    report = render_report(None, [Violation("<frame>", "no rows", 0)], "empty")
    assert "**FAILED**" in report
    assert "Rows:" not in report
    assert report.endswith("\n")


def test_numbers_in_a_text_column_are_reported_as_a_wrong_type_only(flights, params):
    # A request may send a carrier code as a number: that is one broken rule (the type), not an
    # "empty string" whose example is a Python exception text.
    df = flights.assign(carrier=5)
    violations = validate_frame(df, params)
    assert [v.column for v in violations] == ["carrier"]
    assert violations[0].rule.startswith("wrong type")
    assert not any("Error" in e for v in violations for e in v.examples)


def test_read_chunks_cover_every_row_with_the_written_types(tmp_path, make_frame):
    df = make_frame(10)
    write_frame(df, tmp_path / "a.parquet")
    chunks = list(read_chunks(tmp_path / "a.parquet", 4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), read_frame(tmp_path / "a.parquet"))


def test_an_empty_file_is_one_empty_chunk_whose_columns_are_still_checked(tmp_path, make_frame, params):
    write_frame(make_frame(3).drop(columns=["dest"]).iloc[:0], tmp_path / "empty.parquet")
    chunks = list(read_chunks(tmp_path / "empty.parquet", 1000))
    assert len(chunks) == 1 and chunks[0].empty
    rules = {(v.column, v.rule) for v in validate_chunks(chunks, params)}
    assert {("<frame>", "no rows"), ("dest", "required column is missing")} <= rules


def test_split_summary_from_arrow_reads_as_the_pandas_values(make_frame, params):
    df = make_frame(20)
    summary = part_summary(pa.Table.from_pandas(df, preserve_index=False), params)
    assert summary == {
        "rows": 20,
        "target_rate": round(float(df["late"].mean()), 6),
        "time_min": str(df["time_hour"].min()),
        "time_max": str(df["time_hour"].max()),
    }


def test_the_validator_names_the_rows_that_break_a_row_rule_and_only_those(flights, params):
    from mlpipe.data.validation import ChunkValidator, is_row_rule

    df = flights.copy()
    df.index = df.index + 100  # a later chunk: labels are not positions
    df.loc[[101, 104], "distance"] = -5
    df.loc[104, "hour"] = 99  # a second rule on the same row
    df.loc[107, "origin"] = ""
    validator = ChunkValidator(params)
    bad = validator.add(df)
    assert np.flatnonzero(bad).tolist() == [1, 4, 7] and validator.bad_rows == 3
    assert all(is_row_rule(v.rule) for v in validator.violations())
    assert not validator.add(flights).any(), "a clean chunk has no bad row"
    assert not is_row_rule("null rate 0.667 above max 0.6") and not is_row_rule("required column is missing")


def test_bad_row_share_and_the_training_range():
    from mlpipe.data.validation import bad_share_violation, expectation_notes, outside_expected

    assert bad_share_violation(0, 100, 0.0) is None
    assert bad_share_violation(5, 100, 0.05) is None, "at the bound the rest is taken in"
    assert bad_share_violation(6, 100, 0.05).count == 6
    assert bad_share_violation(3, 3, 1.0) is not None, "a batch with no good row left is refused"
    profile = {
        "columns": {
            "price": {"kind": "numerical", "min": 10.0, "max": 9360.0},
            "cut": {"kind": "categorical"},
        }
    }
    frame = pd.DataFrame({"price": [5.0, 10.0, 9360.0, 9999.0, 12000.0, None], "cut": list("abcdef")})
    counts = outside_expected(frame, profile)
    assert counts == {"price": (1, 2)}
    assert expectation_notes(counts, profile) == [
        "price: 1 rows below the training min 10.0, 2 rows above the training max 9360.0 (accepted, flagged)"
    ]


def test_a_binary_batch_whose_two_labels_miss_the_positive_class_is_refused_naming_the_rule():
    from mlpipe.data.validation import TargetTally, target_violations

    tally = TargetTally()
    tally.add(pd.Series(["good", "Bad", "good"]))  # the positive class is 'bad': a relabelled feed
    (v,) = target_violations(tally, "binary", "status", "bad")
    assert v.column == "status" and "neither of them the positive class 'bad'" in v.rule
    assert "rule: dataset.positive_class is one of the target's two labels" in v.rule
    assert target_violations(tally, "binary", "status", "Bad") == []
    assert target_violations(tally, "binary", "status", None) == []
    one_class = TargetTally()
    one_class.add(pd.Series(["good", "good"]))  # a batch of good loans only is fine
    assert target_violations(one_class, "binary", "status", "bad") == []
    floats = TargetTally()
    floats.add(pd.Series([0.0, 1.0, np.nan]))  # a 0/1 column with nulls reads as floats
    assert target_violations(floats, "binary", "late", 1) == []
