"""The service for real: `mlpipe serve` on 127.0.0.1 and a free port, the champion from the MLflow
registry, requests checked against the training profile, every answer in the prediction log (also
on shutdown), feedback, Prometheus metrics, hot swap when the alias moves, refusal of a tampered model."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import mlpipe, registered_model_file, start_server, stop, tracking_client, wait_until

pytestmark = pytest.mark.integration
MODEL = "flights-late"


@pytest.fixture
def server(project_copy):
    """The service over the first run's registry; stopped with SIGTERM (as an operator would)."""
    base, proc = start_server(project_copy, "--poll-s", "0.5")
    yield base, proc, project_copy
    stop(proc)


def logged(root: Path) -> int:
    with sqlite3.connect(root / ".mlpipe" / "predictions.db") as db:
        return db.execute("select count(*) from predictions").fetchone()[0]


def test_predict_validate_log_feedback_metrics_and_a_clean_shutdown(server):
    base, proc, root = server
    info = httpx.get(f"{base}/model").json()
    assert info["version"] == "1" and info["git_commit"] and info["data_md5"] and "roc_auc" in info["metrics"]
    assert info["status"] == "ok"
    example = info["input_example"]
    ok = httpx.post(f"{base}/predict", json=example).json()
    assert (
        ok["model"]["version"] == "1" and ok["predictions"][0] in (0, 1) and 0 <= ok["probabilities"][0] <= 1
    )

    record = example["records"][0]
    bad = httpx.post(
        f"{base}/predict",
        content=json.dumps(
            {"records": [{**record, "carrier": "ZZ", "distance": -5, "hour": float("nan"), "extra": 1}]}
        ),
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 422, "its only record refused: the request is"
    rules = {(d["field"], d["kind"]) for d in bad.json()["detail"]}
    assert rules == {  # the new carrier alone would be answered and flagged
        ("distance", "physically_impossible"),
        ("hour", "not_finite"),
        ("extra", "unknown_field"),
    }
    flagged = httpx.post(f"{base}/predict", json={"records": [{**record, "distance": 4999}]}).json()
    assert (
        flagged["flags"][0]["field"] == "distance"
        and "outside the training range" in flagged["flags"][0]["rule"]
    )
    assert httpx.post(f"{base}/predict", json={"records": [record] * 1001}).status_code == 413
    assert (
        httpx.post(
            f"{base}/predict", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        httpx.get(f"{base}/docs").status_code == 200 and httpx.get(f"{base}/openapi.json").status_code == 200
    )

    fb = httpx.post(f"{base}/feedback", json={"request_id": ok["request_id"], "labels": [1]})
    assert fb.status_code == 200 and fb.json()["labels_attached"] == 1
    assert httpx.post(f"{base}/feedback", json={"request_id": "nope", "labels": [1]}).status_code == 404

    with ThreadPoolExecutor(8) as pool:  # a burst of single-row requests, then SIGTERM right away
        codes = list(
            pool.map(
                lambda _: httpx.post(f"{base}/predict", json=example, timeout=30).status_code, range(300)
            )
        )
    assert codes.count(200) == 300
    metrics = httpx.get(f"{base}/metrics").text
    assert 'mlpipe_requests_total{endpoint="/predict",status="422"} 1.0' in metrics
    assert 'mlpipe_validation_failures_total{rule="physically_impossible"} 1.0' in metrics
    assert "mlpipe_request_latency_seconds_bucket" in metrics and "mlpipe_predictions_total" in metrics
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert logged(root) == 1 + 1 + 300, "every answered request is in the log, also after shutdown"


def test_a_request_is_judged_record_by_record(server):
    """Rows of later months carry a new carrier now and then, and a broken record is rare: a request of 100
    is answered for every record the model can answer; a client that wants all or nothing can ask for it."""
    base, proc, root = server
    record = httpx.get(f"{base}/model").json()["input_example"]["records"][0]
    hundred = [dict(record) for _ in range(100)]
    hundred[37]["carrier"] = "ZZ"
    new = httpx.post(f"{base}/predict", json={"records": hundred})
    assert new.status_code == 200, new.text
    body = new.json()
    assert len(body["predictions"]) == 100 and None not in body["predictions"] and body["refused"] == []
    assert body["flags"] == [
        {
            "record": 37,
            "field": "carrier",
            "value": "ZZ",
            "rule": "category never seen in training (accepted)",
        }
    ]
    assert body["counts"] == {"records": 100, "answered": 100, "refused": 0}

    hundred[5]["distance"] = 7000  # over validate.ranges' physical max of 6000
    one_bad = httpx.post(f"{base}/predict", json={"records": hundred}).json()
    assert one_bad["counts"] == {"records": 100, "answered": 99, "refused": 1}
    assert one_bad["predictions"][5] is None and one_bad["probabilities"][5] is None
    assert sum(p is not None for p in one_bad["predictions"]) == 99 and one_bad["flags"][0]["record"] == 37
    assert [(r["record"], r["field"], r["kind"]) for r in one_bad["refused"]] == [
        (5, "distance", "physically_impossible")
    ]
    whole = httpx.post(f"{base}/predict", params={"all_or_nothing": "true"}, json={"records": hundred})
    assert whole.status_code == 422 and [d["record"] for d in whole.json()["detail"]] == [5], whole.text
    assert httpx.post(f"{base}/predict?all_or_nothing=maybe", json=record).status_code == 422

    # the log holds the 199 answered records, each under its position in its request; feedback is one
    # label per answered record, in order
    fb = httpx.post(f"{base}/feedback", json={"request_id": one_bad["request_id"], "labels": [1] * 99})
    assert fb.status_code == 200 and fb.json()["labels_attached"] == 99, fb.text
    assert (
        httpx.post(
            f"{base}/feedback", json={"request_id": one_bad["request_id"], "labels": [1] * 100}
        ).status_code
        == 422
    )
    metrics = httpx.get(f"{base}/metrics").text
    assert 'mlpipe_requests_total{endpoint="/predict",status="200"} 2.0' in metrics
    assert "mlpipe_refused_records_total 2.0" in metrics  # the partial answer's record, the whole request's
    assert 'mlpipe_validation_failures_total{rule="physically_impossible"} 2.0' in metrics
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    with sqlite3.connect(root / ".mlpipe" / "predictions.db") as db:
        rows = [
            r
            for (r,) in db.execute(
                "select row from predictions where request_id = ?", (one_bad["request_id"],)
            )
        ]
        joined = db.execute(
            "select count(*) from feedback f join predictions p using (request_id, row)"
        ).fetchone()[0]
    assert logged(root) == 199 and 5 not in rows and len(rows) == 99 and joined == 99


def test_no_input_reaches_a_5xx(server):
    base, _, _ = server
    example = httpx.get(f"{base}/model").json()["input_example"]["records"][0]
    rng = random.Random(7)
    junk = [None, "", "x" * 5000, -1e308, 1e308, True, [], {}, 3, -3.5, "JFK"]
    bodies = [b"", b"null", b"[]", b"[1,2]", b'{"records": 5}', b'{"records": []}', b'"text"', b"\xff\xfe"]
    for _ in range(150):
        rec = dict(example)
        for key in rng.sample(sorted(rec), k=rng.randint(1, 4)):
            rec[key] = rng.choice(junk)
        if rng.random() < 0.2:
            rec.pop(rng.choice(sorted(rec)))
        bodies.append(json.dumps({"records": [rec]}).encode())
    for body in bodies:
        status = httpx.post(
            f"{base}/predict", content=body, timeout=30, headers={"content-type": "application/json"}
        ).status_code
        assert 200 <= status < 500, body[:200]


def test_a_version_asked_for_by_name_is_served_as_checked(project_copy):
    # `serve --model` loads the version to refuse it before the service starts; the service serves that
    # load (a version, not the alias: nothing is watched)
    base, proc = start_server(project_copy, "--model", f"models:/{MODEL}/1")
    try:
        assert httpx.get(f"{base}/ready").json()["model_version"] == "1"
        info = httpx.get(f"{base}/model").json()
        assert info["version"] == "1" and info["ref"] == f"models:/{MODEL}/1"
        assert httpx.post(f"{base}/predict", json=info["input_example"]).status_code == 200
    finally:
        stop(proc)


def test_hot_swap_follows_the_champion_alias_and_refuses_a_tampered_model(server):
    base, _, root = server
    import mlflow

    client = tracking_client(root)
    # the registry resolves a version's logged model through the global tracking URI: point it here
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    v1 = client.get_model_version(MODEL, "1")
    v2 = client.create_model_version(MODEL, v1.source, run_id=v1.run_id)
    judge_as_promoted(root, client, v2)
    client.set_registered_model_alias(MODEL, "champion", v2.version)
    wait_until(lambda: httpx.get(f"{base}/ready").json().get("model_version") == str(v2.version), 60)

    # The copied store still points at the session's shared artifacts: tamper, then put the bytes back.
    artifact = registered_model_file(client, MODEL, v1.version)
    original = artifact.read_bytes()
    raw = bytearray(original)
    raw[len(raw) // 2] ^= 0xFF
    artifact.chmod(0o644)
    artifact.write_bytes(bytes(raw))
    try:
        _refused_after_tampering(base, root, client, v2, v1)
    finally:
        artifact.write_bytes(original)


def judge_as_promoted(root: Path, client, version) -> None:
    """The judged record `mlpipe promote` writes (without its infra check): the service serves only these."""
    from mlpipe.registry.judged import PROMOTED, write_judged
    from mlpipe.runtime.signing import read_signing_key

    sha256 = client.get_run(version.run_id).data.tags["mlpipe.sha256"]
    write_judged(client, read_signing_key(root), MODEL, version.version, sha256, PROMOTED)


def _refused_after_tampering(base, root, client, v2, v1):
    v3 = client.create_model_version(MODEL, v1.source, run_id=v1.run_id)
    judge_as_promoted(root, client, v3)  # judged before its bytes changed: the sha256 check refuses it
    client.set_registered_model_alias(MODEL, "champion", v3.version)
    wait_until(lambda: 'mlpipe_model_swaps_total{outcome="refused"}' in httpx.get(f"{base}/metrics").text, 60)
    assert httpx.get(f"{base}/ready").json()["model_version"] == str(v2.version), (
        "the checked model stays in service"
    )
    assert (
        httpx.post(f"{base}/predict", json=httpx.get(f"{base}/model").json()["input_example"]).status_code
        == 200
    )

    # a ref asked for by name that cannot be served: a non-zero exit and one line, not a service without
    # a model (the champion alias, by contrast, is waited for)
    for ref, why in ((f"models:/{MODEL}/{v3.version}", "sha256"), (f"models:/{MODEL}/42", "42")):
        refused = mlpipe(root, "serve", "--model", ref, "--port", "1", check=False)
        said = [line for line in refused.stderr.splitlines() if line.startswith("mlpipe: ")]
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
        assert len(said) == 1 and f"serve: cannot serve {ref}: " in said[0] and why in said[0], said
