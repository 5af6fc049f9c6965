"""Prediction requests against the training profile: refused with field, value and rule, or flagged."""

from __future__ import annotations

import pytest

from mlpipe.data.validation import profile_frame
from mlpipe.serving.request_rules import check_request, rules_from


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
        ({"carrier": "ZZ"}, ("carrier", "unseen_category")),
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
