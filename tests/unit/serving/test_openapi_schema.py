"""The service's OpenAPI document from a training profile: what it says a request may hold is what the
service's own request rules accept, its example is accepted, its answer and refusal schemas hold the bodies
the service writes."""

from __future__ import annotations

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from mlpipe.data.validation import profile_frame
from mlpipe.serving.app import Served
from mlpipe.serving.body import BodyRefused, parse_json
from mlpipe.serving.metrics import Metrics
from mlpipe.serving.openapi import field_schema, input_example, service_openapi
from mlpipe.serving.pages import REDOC_LOGO, asset_dir, home_html, offline_redoc
from mlpipe.serving.predict import predict_answer
from mlpipe.serving.request_rules import Verdict, check_request, rules_from

BASE = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "0"},
    "paths": {
        "/predict": {"post": {}},
        "/feedback": {"post": {}},
        **{path: {"get": {}} for path in ("/health", "/ready", "/model", "/metrics")},
    },
}


@pytest.fixture(scope="module")
def profile(make_frame, params):
    frame = make_frame(500, seed=2)
    frame.loc[frame.index[:20], "temp"] = np.nan  # a nullable feature with nulls, as the weather has
    return profile_frame(frame, params)


def served_of(profile, params, task="binary", classes=(0, 1)) -> Served:
    rules = rules_from(profile, params)
    return Served(None, "flights-late", "3", "a" * 32, {}, rules, profile, task, list(classes))


@pytest.fixture(scope="module")
def doc(profile, params):
    return service_openapi(BASE, served_of(profile, params), list(params.features.columns), 5, 1000)


def validator(doc: dict, name: str) -> Draft202012Validator:
    return Draft202012Validator({**doc, "$ref": f"#/components/schemas/{name}"})


def test_the_example_body_is_what_the_service_accepts(doc, profile, params):
    example = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert example == input_example(profile, list(params.features.columns))
    validator(doc, "PredictRequest").validate(example)
    assert check_request(example["records"], rules_from(profile, params))[0] == []


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"carrier": "ZZ"}, True),  # a category never seen in training: answered and flagged
        ({"carrier": 7}, False),
        ({"carrier": None}, False),  # null where none are allowed
        ({"temp": None}, True),  # null allowed: an unknown value
        ({"distance": 0}, False),  # physically impossible (min 1)
        ({"distance": 5999}, True),  # outside the training range: accepted (and flagged)
        ({"distance": "far"}, False),
        ({"hour": 7.5}, True),  # an int feature in training, a number on the wire
        ({"extra": 1}, False),
        ({"distance": ...}, False),  # missing
    ],
)
def test_the_schema_refuses_exactly_what_the_request_rules_refuse(doc, profile, params, change, accepted):
    record = input_example(profile, list(params.features.columns))["records"][0]
    record = {k: v for k, v in (record | change).items() if v is not ...}
    by_schema = validator(doc, "PredictRecord").is_valid(record)
    by_rules = check_request([record], rules_from(profile, params))[0] == []
    assert by_schema == by_rules == accepted


def test_a_project_that_refuses_unseen_categories_documents_them_as_an_enum(profile, params):
    from mlpipe.config import ServeCfg

    strict = params.model_copy(update={"serve": ServeCfg(unseen_category="refuse")})
    served = Served(
        None, "flights-late", "3", "a" * 32, {}, rules_from(profile, strict), profile, "binary", [0, 1]
    )
    doc = service_openapi(BASE, served, list(params.features.columns), 5, 1000)
    record = input_example(profile, list(params.features.columns))["records"][0]
    assert not validator(doc, "PredictRecord").is_valid({**record, "carrier": "ZZ"})
    assert check_request([{**record, "carrier": "ZZ"}], served.rules)[0][0]["kind"] == "unseen_category"
    carrier = doc["components"]["schemas"]["PredictRecord"]["properties"]["carrier"]
    assert carrier["enum"] == sorted(profile["columns"]["carrier"]["categories"])


def test_the_request_shape_is_records_up_to_the_limit_or_one_record(doc, profile, params):
    record = input_example(profile, list(params.features.columns))["records"][0]
    request = validator(doc, "PredictRequest")
    assert request.is_valid(record) and request.is_valid({"records": [record] * 5})
    assert not request.is_valid({"records": [record] * 6}) and not request.is_valid({"records": []})


def test_a_field_says_its_categories_ranges_and_nullability(profile, params):
    rules = rules_from(profile, params)
    carrier = field_schema("carrier", rules, profile)
    seen = sorted(profile["columns"]["carrier"]["categories"])
    assert carrier["type"] == "string" and carrier["x-training-categories"] == seen and "enum" not in carrier
    assert "answered as an unknown category and flagged" in carrier["description"]
    distance = field_schema("distance", rules, profile)
    assert (distance["type"], distance["minimum"], distance["maximum"]) == ("number", 1, 6000)
    assert distance["x-training-min"] == profile["columns"]["distance"]["min"]
    assert "training range" in distance["description"]
    temp = field_schema("temp", rules, profile)
    assert temp["type"] == ["number", "null"] and "null allowed" in temp["description"]


@pytest.mark.parametrize(
    ("task", "classes", "out"),
    [
        ("binary", [0, 1], np.array([0.2, 0.9])),
        ("multiclass", ["a", "b", "c"], np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])),
        ("regression", [], np.array([1.5, -3.0])),
    ],
)
def test_the_answer_schema_holds_the_answer_the_service_writes(profile, params, task, classes, out):
    served = served_of(profile, params, task, classes)
    doc = service_openapi(BASE, served, list(params.features.columns), 5, 1000)
    answers = out if task == "regression" else np.array(classes)[[0, -1]]
    whole = Verdict(2, [0, 1], [], [])
    body = predict_answer("f" * 32, served, out, answers, whole)
    validator(doc, "PredictAnswer").validate(body)
    assert not validator(doc, "PredictAnswer").is_valid({**body, "predictions": "x"})
    # three records, the middle one refused: null in its place, its problem listed, the counts
    refused = {
        "record": 1,
        "field": "hour",
        "value": 30,
        "rule": "above max 23.0",
        "kind": "physically_impossible",
    }
    partial = predict_answer("f" * 32, served, out, answers, Verdict(3, [0, 2], [refused], []))
    validator(doc, "PredictAnswer").validate(partial)
    assert partial["predictions"][1] is None and partial["counts"] == {
        "records": 3,
        "answered": 2,
        "refused": 1,
    }
    assert all(v[1] is None for k, v in partial.items() if k in ("predictions", "probabilities"))
    example = doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["example"]
    validator(doc, "PredictAnswer").validate(example)
    assert doc["paths"]["/predict"]["post"]["parameters"][0]["name"] == "all_or_nothing"
    labels = validator(doc, "FeedbackRequest")
    assert labels.is_valid({"request_id": "r", "labels": [classes[0] if classes else 2.5]})
    assert not labels.is_valid({"request_id": "r", "labels": ["no such class"]})


def test_every_refusal_is_documented_with_the_body_the_service_writes(doc, profile, params):
    refusal = validator(doc, "Refusal")
    for path, codes in {"/predict": {"400", "413", "422", "500", "503"}, "/feedback": {"404", "422"}}.items():
        responses = doc["paths"][path]["post"]["responses"]
        assert codes <= set(responses)
        for code in codes:
            refusal.validate(responses[code]["content"]["application/json"]["example"])
    problems, _ = check_request([{"carrier": "ZZ"}], rules_from(profile, params))
    refusal.validate({"detail": problems})
    with pytest.raises(BodyRefused) as refused:
        parse_json(b"{not json")
    refusal.validate({"detail": refused.value.detail})


def test_before_a_model_is_loaded_the_document_still_lists_the_answers(params):
    doc = service_openapi(BASE, None, list(params.features.columns), 5, 1000)
    post = doc["paths"]["/predict"]["post"]
    assert "example" not in post["requestBody"]["content"]["application/json"]
    assert {"200", "400", "413", "422", "503"} <= set(post["responses"])
    assert "No model loaded" in doc["components"]["schemas"]["PredictRecord"]["description"]


def test_the_home_page_names_the_model_and_links_the_docs(profile, params):
    page = home_html("svc", served_of(profile, params), "champion", ["carrier", "distance"], None)
    for text in ("flights-late", "champion", "a" * 32, "binary", "carrier, distance"):
        assert text in page
    for href in ("/docs", "/redoc", "/metrics", "/health", "/ready", "/model"):
        assert f'href="{href}"' in page
    assert "http" not in page.replace("HTTP", "")  # no outside asset or link
    assert "No model loaded: &lt;oops&gt;." in home_html("svc", None, "", [], "<oops>")


def test_metrics_name_the_served_model_and_follow_a_swap():
    from prometheus_client import generate_latest

    metrics, current = Metrics(), {"model": None}
    metrics.watch_model(lambda: current["model"])
    assert "mlpipe_model_info{" not in generate_latest(metrics.registry).decode()
    current["model"] = ("flights-late", "2", "champion", "r2")
    text = generate_latest(metrics.registry).decode()
    assert 'mlpipe_model_info{alias="champion",name="flights-late",run_id="r2",version="2"} 1.0' in text


def test_the_served_redoc_bundle_asks_no_outside_host():
    bundle = (asset_dir() / "redoc.standalone.js").read_bytes()
    assert bundle.count(REDOC_LOGO) == 1  # a new redoc moved it: look again
    assert b"cdn.redoc.ly" not in offline_redoc(bundle)


def test_the_get_routes_say_what_they_answer_with_an_example(doc):
    """/docs showed `null` for every GET and `application/json` for the Prometheus text."""
    paths = doc["paths"]
    for path in ("/health", "/ready", "/model"):
        answer = paths[path]["get"]["responses"]["200"]["content"]["application/json"]
        assert paths[path]["get"]["summary"] and answer["example"], path
    assert paths["/health"]["get"]["responses"]["200"]["content"]["application/json"]["example"] == {
        "status": "ok"
    }
    assert (
        paths["/ready"]["get"]["responses"]["200"]["content"]["application/json"]["example"]["model_version"]
        == "3"
    )
    assert (
        paths["/ready"]["get"]["responses"]["503"]["content"]["application/json"]["example"]["ready"] is False
    )
    model = paths["/model"]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    assert (
        model["max_records"] == 5
        and model["input_example"]
        == paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["example"]
    )
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"] and 'version="3"' in metrics["text/plain"]["example"]
