"""The service under load, beyond its capacity, and under fuzzing, as a deployed process:
`mlpipe serve` on 127.0.0.1 and a free port, real rows of the project's test split as traffic.

- bounded load: 2,000 requests at concurrency 16, zero errors, every request in the prediction log;
- a burst beyond capacity: the service sheds load with 503 (uvicorn's concurrency limit), stays up,
  and logs exactly what it answered;
- property-based fuzzing of /predict and of every other endpoint (hypothesis): any body (JSON or not,
  lone surrogates, deep nesting, huge numbers as text or as literals) gets a 2xx or a 4xx, never a 5xx."""

from __future__ import annotations

import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import copy_project, start_server, stop, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpipe.flows.demo import json_records

pytestmark = pytest.mark.integration
# --max-concurrency of the service under test: requests in progress (serving.guard; idle connections and
# the probes do not count). 16 clients stay well under it; a burst of 3x it is shed.
LIMIT = 40


@pytest.fixture(scope="module")
def service(first_run, tmp_path_factory):
    root = copy_project(first_run[0], tmp_path_factory.mktemp("load") / "project")
    base, proc = start_server(root, "--max-concurrency", str(LIMIT))
    yield base, proc, root
    stop(proc)


def logged(root: Path) -> tuple[int, int]:
    """(rows, distinct request ids) in the prediction log."""
    with sqlite3.connect(root / ".mlpipe" / "predictions.db") as db:
        return db.execute("select count(*), count(distinct request_id) from predictions").fetchone()


def settled(root: Path, rows: int) -> bool:
    return logged(root)[0] >= rows


def traffic(root: Path, n: int) -> list[dict]:
    """n real records of the test split, as JSON-ready dicts of the served features."""
    import yaml

    features = yaml.safe_load((root / "params.yaml").read_text())["features"]
    cols = features["categorical"] + features["numerical"]
    frame = pd.read_parquet(root / "artifacts" / "split" / "test.parquet", columns=cols).dropna()
    return json_records(frame.sample(n=n, replace=len(frame) < n, random_state=11), cols)


def test_bounded_load_answers_everything_and_logs_every_request(service):
    base, proc, root = service
    before = logged(root)[0]
    records = traffic(root, 2000)
    with httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=16)) as client:

        def one(record: dict) -> int:
            return client.post("/predict", json=record).status_code

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(one, records))
    assert codes.count(200) == 2000, {c: codes.count(c) for c in set(codes)}
    wait_until(lambda: settled(root, before + 2000), 60)
    rows, _ = logged(root)
    assert rows == before + 2000, "log count == request count"
    assert proc.poll() is None


def test_a_burst_beyond_capacity_is_shed_with_503_and_the_service_stays_up(service):
    base, proc, root = service
    before = logged(root)[0]
    body = json.dumps({"records": traffic(root, 1000)}).encode()  # the largest batch: the slowest request
    burst = 3 * LIMIT
    start = threading.Barrier(burst)

    def one(_: int) -> int:
        with httpx.Client(base_url=base, timeout=120) as client:
            try:  # a connection of its own each, open before the burst (this warm-up may be shed too)
                client.get("/health")
            except httpx.TransportError:
                pass
            start.wait(60)
            try:
                return client.post(
                    "/predict", content=body, headers={"content-type": "application/json"}
                ).status_code
            except httpx.TransportError:
                return -1  # refused at the socket: also shedding, never a crash

    with ThreadPoolExecutor(burst) as pool:
        codes = list(pool.map(one, range(burst)))
    assert set(codes) <= {200, 503, -1}, codes
    assert codes.count(503) > 0 and codes.count(200) > 0, {c: codes.count(c) for c in set(codes)}
    assert proc.poll() is None and httpx.get(f"{base}/ready").status_code == 200
    answered = codes.count(200) * 1000
    wait_until(lambda: settled(root, before + answered), 60)
    assert logged(root)[0] == before + answered, "exactly the answered requests are logged"
    assert (
        httpx.post(
            f"{base}/predict", content=body, timeout=60, headers={"content-type": "application/json"}
        ).status_code
        == 200
    ), "serves again after the burst"


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["\ud800", "\udfff", "a\udc80b", "\ud83d"]),  # lone surrogates (sent as \u escapes)
    st.integers(min_value=10**15).map(str),  # huge numbers as strings
    st.integers(min_value=10**300, max_value=10**400),  # beyond float64
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def records(draw, example: dict):
    """A record built from a valid one: some fields replaced by junk, some dropped, some unknown added."""
    rec = dict(example)
    for key in draw(st.lists(st.sampled_from(sorted(example)), max_size=len(example), unique=True)):
        rec[key] = draw(JUNK)
    for key in draw(st.lists(st.sampled_from(sorted(example)), max_size=3, unique=True)):
        rec.pop(key, None)
    rec |= draw(st.dictionaries(st.text(min_size=1, max_size=8), JUNK, max_size=2))
    return rec


def bodies(example: dict):
    record = records(example)
    return st.one_of(
        st.builds(lambda r: {"records": r}, st.lists(record, min_size=0, max_size=5)),
        record,
        st.recursive(
            JUNK,
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=8,
        ),
    )


RAW_BODIES = st.one_of(  # bytes no json.dumps would write: nesting past any limit, literals past float64
    st.integers(min_value=30, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=30, max_value=600).map(
        lambda n: b'{"records": [{"hour": ' + b"[" * n + b"]" * n + b"}]}"
    ),
    st.sampled_from([b'{"records": [{"temp": 1e999}]}', b'{"records": [{"temp": ' + b"9" * 5000 + b"}]}"]),
    st.binary(max_size=64),
)


def test_fuzzed_predict_bodies_never_reach_a_5xx(service):
    base, proc, _ = service
    log = proc.log_path
    info = httpx.get(f"{base}/model").json()
    example = info["input_example"]["records"][0]
    seen: dict[int, int] = {}
    client = httpx.Client(base_url=base, timeout=30)

    @settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(bodies(example))
    def check(body):
        response = client.post(
            "/predict", content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, f"{json.dumps(body)[:2000]} -> {response.text[:300]}; see {log}"
        if response.status_code == 422:
            assert all("field" in d and "rule" in d for d in response.json()["detail"]), response.text
        if response.status_code == 200:
            n = len(body["records"]) if isinstance(body, dict) and "records" in body else 1
            assert len(response.json()["predictions"]) == n

    try:
        check()
    finally:
        client.close()
    assert seen.get(422, 0) > 50 and seen.get(200, 0) > 0, seen  # the fuzzer reached both sides of the rules
    assert proc.poll() is None


def test_fuzzed_bodies_on_every_endpoint_never_reach_a_5xx(service):
    base, proc, _ = service
    example = httpx.get(f"{base}/model").json()["input_example"]["records"][0]
    paths = ["/predict", "/feedback", "/health", "/ready", "/model", "/metrics", "/nowhere"]
    client = httpx.Client(base_url=base, timeout=30)
    encoded = bodies(example).map(lambda b: json.dumps(b).encode())
    feedback = st.fixed_dictionaries(
        {
            "request_id": st.one_of(JUNK, st.text(max_size=40)),
            "labels": st.one_of(JUNK, st.lists(JUNK, max_size=3)),
        }
    ).map(lambda b: json.dumps(b).encode())

    @settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(
        st.sampled_from(paths),
        st.sampled_from(["POST", "PUT", "GET"]),
        st.one_of(encoded, feedback, RAW_BODIES),
    )
    def check(path, method, body):
        response = client.request(method, path, content=body, headers={"content-type": "application/json"})
        assert response.status_code < 500, f"{method} {path} {body[:300]!r} -> {response.text[:300]}"

    try:
        check()
    finally:
        client.close()
    metrics = httpx.get(f"{base}/metrics").text
    assert 'status="5' not in metrics.replace('status="503"', ""), "no 5xx but load shedding's 503"
    assert proc.poll() is None
