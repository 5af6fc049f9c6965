"""Prediction requests against the training profile, record by record: a record that breaks a rule is
refused alone with field, value and rule, the others answered; accepted oddities are flagged."""

from __future__ import annotations

import pytest

from mlpipe.config import ServeCfg
from mlpipe.data.validation import profile_frame
from mlpipe.serving.request_rules import (
    UNSEEN_ACCEPTED,
    all_or_nothing,
    check_record,
    check_request,
    judge_records,
    rules_from,
)


@pytest.fixture(scope="module")
def rules(make_frame, params):
    return rules_from(profile_frame(make_frame(500, seed=2), params), params)


@pytest.fixture(scope="module")
def good(make_frame, params):
    row = make_frame(1, seed=2).iloc[0]
    rec = {c: row[c] for c in params.features.categorical}
    rec |= {c: (None if row[c] != row[c] else float(row[c])) for c in params.features.numerical}
    return rec


def kinds(problems):
    return {(p["field"], p["kind"]) for p in problems}


def test_a_record_like_the_training_data_passes(rules, good):
    assert check_request([good], rules) == ([], [])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"carrier": 7}, ("carrier", "wrong_type")),
        ({"distance": "far"}, ("distance", "wrong_type")),
        ({"distance": True}, ("distance", "wrong_type")),
        ({"distance": float("nan")}, ("distance", "not_finite")),
        ({"distance": float("inf")}, ("distance", "not_finite")),
        ({"hour": 30}, ("hour", "physically_impossible")),
        ({"origin": None}, ("origin", "null")),
        ({"surprise": 1}, ("surprise", "unknown_field")),
    ],
)
def test_each_broken_rule_is_named(rules, good, change, expected):
    problems, _ = check_request([{**good, **change}], rules)
    assert kinds(problems) == {expected} and all(p["record"] == 0 and p["rule"] for p in problems)


def test_a_missing_field_and_a_non_object_are_refused(rules, good):
    rec = dict(good)
    rec.pop("distance")
    problems, _ = check_request([rec, "not a record"], rules)
    assert kinds(problems) == {("distance", "missing_field"), ("<record>", "not_an_object")}


def test_out_of_training_range_but_possible_is_accepted_and_flagged(rules, good):
    problems, flags = check_request([{**good, "distance": 4999.0}], rules)
    assert problems == [] and flags[0]["field"] == "distance" and flags[0]["training_max"] < 4999


def test_null_is_fine_where_training_had_nulls(rules, good):
    assert check_request([{**good, "precip": None}], rules)[0] == []


def test_problem_bodies_stay_valid_json_whatever_the_value(rules, good):
    import json

    problems, _ = check_request(
        [{**good, "0": float("inf"), "carrier": float("nan"), "hour": 10**400}], rules
    )
    body = json.dumps({"detail": problems}, allow_nan=False)  # what a JSON response must be able to encode
    assert kinds(problems) == {
        ("0", "unknown_field"),
        ("carrier", "wrong_type"),
        ("hour", "physically_impossible"),
    }
    assert '"inf"' in body


def test_the_same_flights_a_quarter_later_are_not_flagged_for_their_date(make_frame, params):
    """The bundled features hold no calendar position: flights three months after the training weeks
    (same draws, only the dates differ) pass unflagged, where a `month` feature flags every one."""
    from mlpipe.config import FeaturesCfg

    weeks = 24 * 7 * 2  # every hour and weekday in both periods
    january, april = (
        make_frame(weeks, seed=5, start="2013-01-07"),
        make_frame(weeks, seed=5, start="2013-04-01"),
    )

    def requests(p):
        return april[p.features.columns].to_dict(orient="records")

    assert check_request(requests(params), rules_from(profile_frame(january, params), params)) == ([], [])
    numerical = [*params.features.numerical, "month"]
    dated = params.model_copy(
        update={"features": FeaturesCfg(**(params.features.model_dump() | {"numerical": numerical}))}
    )
    problems, flags = check_request(requests(dated), rules_from(profile_frame(january, dated), dated))
    assert problems == [] and len(flags) == weeks and {f["field"] for f in flags} == {"month"}


@pytest.fixture(scope="module")
def refusing(make_frame, params):
    """The rules of a project that says `serve: {unseen_category: refuse}`."""
    strict = params.model_copy(update={"serve": ServeCfg(unseen_category="refuse")})
    return rules_from(profile_frame(make_frame(500, seed=2), strict), strict)


def hundred(good, at: int = 37, **change) -> list[dict]:
    records = [dict(good) for _ in range(100)]
    records[at] |= change
    return records


def test_a_new_carrier_in_a_request_of_100_is_answered_and_flagged(rules, good):
    """Hotel rows of later months had ~3% new agents: the whole request was refused for them, though every
    estimator's preprocessing encodes an unknown category (as a null)."""
    verdict = judge_records(hundred(good, carrier="ZZ"), rules)
    assert verdict.answered == list(range(100)) and verdict.problems == [] and verdict.refused == 0
    assert verdict.flags == [{"record": 37, "field": "carrier", "value": "ZZ", "rule": UNSEEN_ACCEPTED}]
    assert verdict.columns is not None and verdict.columns["carrier"][37] == "ZZ"  # taken column-wise


def test_a_project_that_says_refuse_refuses_that_record_alone(refusing, good):
    verdict = judge_records(hundred(good, carrier="ZZ"), refusing)
    assert verdict.answered == [i for i in range(100) if i != 37] and verdict.flags == []
    assert kinds(verdict.problems) == {("carrier", "unseen_category")} and verdict.problems[0]["record"] == 37
    assert "serve.unseen_category" in verdict.problems[0]["rule"]
    assert verdict.counts() == {"records": 100, "answered": 99, "refused": 1}


def test_a_record_above_a_physical_max_is_refused_alone(rules, good):
    verdict = judge_records(hundred(good, at=5, hour=30), rules)
    assert len(verdict.answered) == 99 and 5 not in verdict.answered
    assert verdict.problems == [
        {
            "record": 5,
            "field": "hour",
            "value": 30,
            "rule": "above max 23.0 (physically impossible)",
            "kind": "physically_impossible",
        }
    ]
    assert verdict.taken(list(range(100))) == verdict.answered
    assert verdict.per_record(["a"] * 99)[4:7] == ["a", None, "a"]


@pytest.mark.parametrize(
    "change",
    [{"distance": float("nan")}, {"surprise": 1}, {"origin": None}, {"distance": "far"}, {"hour": -1}],
)
def test_each_broken_rule_refuses_its_record_alone(rules, good, change):
    records = [dict(good), {**good, **change}, dict(good)]
    verdict = judge_records(records, rules)
    assert verdict.answered == [0, 2] and {p["record"] for p in verdict.problems} == {1}


def test_when_every_record_is_refused_the_problems_are_as_before(rules, good):
    missing = {k: v for k, v in good.items() if k != "distance"}
    verdict = judge_records([{**good, "hour": 30}, missing, "not a record"], rules)
    assert verdict.answered == [] and verdict.refused == 3 and verdict.flags == []
    assert [(p["record"], p["field"], p["kind"]) for p in verdict.problems] == [
        (0, "hour", "physically_impossible"),
        (1, "distance", "missing_field"),
        (2, "<record>", "not_an_object"),
    ]


def test_a_refused_record_keeps_no_flag_and_the_others_keep_theirs(rules, good):
    records = [{**good, "carrier": "ZZ", "hour": 30}, {**good, "carrier": "QQ", "distance": 4999.0}]
    verdict = judge_records(records, rules)
    assert verdict.answered == [1] and [(f["record"], f["field"]) for f in verdict.flags] == [
        (1, "carrier"),
        (1, "distance"),
    ]


def test_the_column_check_and_the_record_check_flag_alike(make_frame, params, rules):
    """New categories and out-of-range numbers over a realistic batch: the column-wise path gives the flags
    check_record gives, in its order (by record, then field)."""
    frame = make_frame(300, seed=9)
    records = frame[params.features.columns].to_dict(orient="records")
    for i in range(0, 300, 7):
        records[i]["dest"] = f"NEW{i % 3}"
    for i in range(0, 300, 11):
        records[i]["distance"] = 5999.0
    verdict = judge_records(records, rules)
    by_record = [f for i, r in enumerate(records) for f in check_record(i, r, rules)[1]]
    assert verdict.columns is not None and verdict.problems == [] and verdict.flags == by_record
    assert {f["rule"] for f in verdict.flags} == {UNSEEN_ACCEPTED, "outside the training range (accepted)"}


@pytest.mark.parametrize(
    ("value", "whole"),
    [(None, False), ("true", True), ("1", True), ("False", False), ("0", False), ("maybe", None), ("", None)],
)
def test_all_or_nothing_is_a_boolean_query_value(value, whole):
    assert all_or_nothing(value) is whole


def test_the_serve_section_names_its_choices(params):
    from pydantic import ValidationError

    assert params.serve.unseen_category == "flag"  # the default, also for projects without the section
    with pytest.raises(ValidationError, match="unseen_category"):
        ServeCfg(unseen_category="drop")
