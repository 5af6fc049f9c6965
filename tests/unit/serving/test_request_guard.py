"""The request path's guard in the real app (no model loaded, no server): bodies bounded while they stream,
every unexpected error a counted 500 with a request id, load shed with 503 except for the probes."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from mlpipe.serving.app import ServeConfig, create_app
from mlpipe.serving.guard import GuardRequests
from mlpipe.serving.prediction_log import PredictionLog

LIMIT = 1000
JSON = {"content-type": "application/json"}


@pytest.fixture
def app(tmp_path):
    log = PredictionLog(f"sqlite:///{tmp_path / 'predictions.db'}")
    params = SimpleNamespace(model=SimpleNamespace(name="m"))
    service = create_app(
        None, params, "models:/m@champion", log, ServeConfig(max_bytes=LIMIT), watch_alias=None
    )
    yield service
    log.close()


def chunks(n: int, size: int = 100):
    for _ in range(n):
        yield b" " * size


def test_bodies_over_the_limit_are_413_on_every_endpoint_streamed_or_not(app):
    client = TestClient(app)
    for path in ("/predict", "/feedback", "/health"):
        declared = client.post(path, content=b" " * (LIMIT + 1))
        assert declared.status_code == 413, path
        assert declared.json() == {
            "detail": [
                {"field": "<body>", "rule": f"payload of {LIMIT + 1} bytes is over the limit of {LIMIT}"}
            ]
        }
        assert declared.headers["connection"] == "close"
    streamed = client.post("/feedback", content=chunks(50), headers=JSON)  # no Content-Length: chunked
    assert streamed.status_code == 413
    assert (
        streamed.json()["detail"][0]["rule"]
        == f"payload of more than {LIMIT} bytes is over the limit of {LIMIT}"
    )
    assert client.post("/feedback", content=chunks(9), headers=JSON).status_code == 422, (
        "under the limit: read and judged"
    )
    metrics = client.get("/metrics").text
    assert 'mlpipe_requests_total{endpoint="/feedback",status="413"} 2.0' in metrics


def test_feedback_refuses_deep_nesting_and_surrogates_and_keeps_its_old_answers(app):
    client = TestClient(app)
    deep = client.post("/feedback", content=b"[" * 400 + b"]" * 400, headers=JSON)
    assert deep.status_code == 400 and "limit: 32" in deep.json()["detail"][0]["rule"]
    surrogate = client.post("/feedback", content=b'{"request_id": "\\udc80", "labels": [1]}', headers=JSON)
    assert surrogate.status_code == 422 and surrogate.json()["detail"][0]["field"] == "request_id"
    assert client.post("/feedback", content=b"{not json", headers=JSON).json() == {
        "detail": [{"field": "<body>", "rule": 'expected {"request_id": "...", "labels": [label, ...]}'}]
    }


def test_an_unexpected_error_is_a_counted_500_with_a_request_id_in_the_log(app, caplog):
    def fault():
        raise RuntimeError("disk on fire")

    app.add_api_route("/fault", fault, methods=["GET"])  # a route that fails the way a bug would
    client = TestClient(app)
    with caplog.at_level(logging.ERROR, logger="mlpipe"):
        answer = client.get("/fault")
    assert answer.status_code == 500
    request_id = answer.json()["request_id"]
    assert answer.headers["x-request-id"] == request_id and request_id in answer.json()["detail"][0]["rule"]
    line = next(r.getMessage() for r in caplog.records if "request_failed" in r.getMessage())
    assert (
        f"request_id={request_id}" in line
        and "RuntimeError: disk on fire" in line
        and "at=test_request_guard.py:" in line
    )
    assert 'mlpipe_requests_total{endpoint="/fault",status="500"} 1.0' in client.get("/metrics").text


def test_beyond_max_in_flight_requests_get_503_but_the_probes_still_answer():
    release = asyncio.Event()

    async def slow(scope, receive, send):
        if scope["path"] != "/health":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = GuardRequests(slow, max_bytes=LIMIT, max_in_flight=2)

    async def call(path: str) -> int:
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await guard({"type": "http", "path": path, "headers": []}, receive, send)
        return sent if path == "/predict" and sent[0]["status"] == 503 else sent[0]["status"]

    async def story():
        busy = [asyncio.ensure_future(call("/predict")) for _ in range(2)]
        await asyncio.sleep(0)
        shed, probe = await call("/predict"), await call("/health")
        release.set()
        return shed, probe, await asyncio.gather(*busy), await call("/predict")

    shed, probe, busy, after = asyncio.run(story())
    assert (shed[0]["status"], probe, busy, after) == (503, 200, [200, 200], 200)
    headers = dict(shed[0]["headers"])
    assert headers[b"retry-after"] == b"1"
    rule = json.loads(shed[1]["body"])["detail"][0]["rule"]
    assert rule.startswith("2 requests in progress, at the limit of 2 (rule: --max-concurrency")


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/json"],
)
def test_a_body_not_sent_as_json_is_a_415_naming_the_rule(app, content_type):
    client = TestClient(app)
    headers = {"content-type": content_type} if content_type else {}
    for path in ("/predict", "/feedback"):
        answer = client.post(path, content=b'{"request_id": "x", "labels": [1]}', headers=headers)
        assert answer.status_code == 415, (path, answer.text)
        rule = answer.json()["detail"][0]["rule"]
        assert rule.endswith("(rule: the body must be sent as application/json)"), rule
    assert (
        client.post(
            "/feedback", content=b"{}", headers={"content-type": "Application/JSON; charset=utf-8"}
        ).status_code
        == 422
    ), "application/json with a charset is read (and judged)"


def test_requests_are_counted_by_route_not_by_the_path_a_client_made_up(app):
    client = TestClient(app)
    for path in ("/a", "/b/c", "/predict/x", "/.env"):
        assert client.get(path).status_code == 404
    assert client.get("/predict").status_code == 405  # a route's path with the wrong method: the route
    client.post("/feedback", content=b" " * (LIMIT + 1))  # refused before routing: still its own path
    metrics = client.get("/metrics").text
    assert 'mlpipe_requests_total{endpoint="unmatched",status="404"} 4.0' in metrics
    assert 'mlpipe_requests_total{endpoint="/predict",status="405"} 1.0' in metrics
    assert 'mlpipe_requests_total{endpoint="/feedback",status="413"} 1.0' in metrics
    labels = {
        line.split('endpoint="')[1].split('"')[0] for line in metrics.splitlines() if 'endpoint="' in line
    }
    assert not labels & {"/a", "/b/c", "/predict/x", "/.env"}
