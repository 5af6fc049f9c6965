"""The service stays answerable and honest under a burst, a locked database and a full disk, as a deployed
`mlpipe serve` on 127.0.0.1 (issue 30):

- /health, /ready and /metrics answer within 100 ms (p99) while bursts of 300 single-row /predict at once are
  shed beyond --max-concurrency with 503s that name the rule and say when to retry;
- /feedback while SQLite is held BEGIN EXCLUSIVE for 40 s: never a 500 (a 503 naming the lock, then 200 once
  it is released) and /health stays fast;
- the spool on a full filesystem (a 1 MiB tmpfs): /predict 503 and /ready 503, both naming the disk; room
  again, ready again, and every answered request logged once;
- bodies not sent as application/json are a 415 naming the rule."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import copy_project, post_until_refused, start_server, stop, wait_until

pytestmark = pytest.mark.integration
# 24 waves: ~200 probes, so that the p99 the issue bounds is a p99 (with fewer than 100 probes it is the
# slowest probe: one wave's start, when the event loop takes in 300 requests at once, decided it alone)
BURST, WAVES, LIMIT = 300, 24, 64
PROBE_BOUND_MS = 100


class Prober:
    """Probes /health, /ready and /metrics in turn every 20 ms from a process of its own (prober.py) until
    the block ends: the test process's pauses are not the service's."""

    def __init__(self, port: int):
        self.port, self.times, self.statuses = port, [], []

    def __enter__(self) -> Prober:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("prober.py")), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        out, _ = self._proc.communicate("", timeout=60)
        assert self._proc.returncode == 0, f"the prober failed (exit {self._proc.returncode})"
        seen = json.loads(out)
        self.times, self.statuses = [ms for ms, _ in seen], [status for _, status in seen]

    def p99(self) -> float:
        ranked = sorted(self.times)
        return ranked[min(len(ranked) - 1, int(0.99 * len(ranked)))]


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def service(first_run, tmp_path_factory):
    root = copy_project(first_run[0], tmp_path_factory.mktemp("faults") / "project")
    base, proc = start_server(root, "--max-concurrency", str(LIMIT))
    example = httpx.get(f"{base}/model", timeout=30).json()["input_example"]
    yield base, proc, root, example
    stop(proc)


# A latency bound the issue sets (p99 < 100 ms): measured alone (`make test-slow` runs the `timing` tier
# first, one test at a time), not beside the suite's other workers on 2 cores, where it measures them.
@pytest.mark.timing
def test_probes_answer_within_100_ms_while_bursts_of_300_predictions_are_shed(service, tmp_path):
    base, proc, _, example = service
    body = tmp_path / "body.json"
    body.write_text(json.dumps(example))
    with Prober(port_of(base)) as prober:
        time.sleep(0.5)
        load = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("burst.py")), str(port_of(base)), str(BURST)]
            + [str(WAVES), str(body)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert load.returncode == 0, load.stderr
    codes, shed = json.loads(load.stdout)
    print(
        f"burst {BURST} x {WAVES}: {codes}; probes {len(prober.times)}, p99 {prober.p99():.0f} ms, "
        f"max {max(prober.times):.0f} ms"
    )
    assert set(codes) <= {"200", "503"}, codes
    assert codes.get("503", 0) >= WAVES * (BURST - 2 * LIMIT), f"the limit sheds: {codes}"
    assert shed["retry-after"] == "1" and "(rule: --max-concurrency sheds" in shed["rule"], shed
    assert set(prober.statuses) == {200} and len(prober.times) >= 100, len(prober.times)
    assert prober.p99() < PROBE_BOUND_MS, sorted(prober.times)[-10:]
    assert proc.poll() is None


def test_feedback_while_sqlite_is_locked_40_s_is_never_a_500_and_health_stays_fast(service):
    base, proc, root, example = service
    with httpx.Client(base_url=base, timeout=60) as client:
        answered = client.post("/predict", json=example).json()["request_id"]
        labels = {"request_id": answered, "labels": [1]}
        locker = sqlite3.connect(root / ".mlpipe" / "predictions.db", isolation_level=None)
        statuses, reasons = [], set()
        with Prober(port_of(base)) as prober:
            locker.execute("BEGIN EXCLUSIVE")
            try:
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline:
                    r = client.post("/feedback", json=labels)
                    statuses.append(r.status_code)
                    if r.status_code == 503:
                        reasons.add(r.json()["detail"][0]["rule"])
                    time.sleep(1)
            finally:
                locker.execute("COMMIT")
                locker.close()
        after = client.post("/feedback", json=labels)
    print(
        f"feedback under the lock: {statuses}; probes p99 {prober.p99():.0f} ms, max {max(prober.times):.0f}"
    )
    assert set(statuses) == {503}, statuses
    assert all("database is locked" in r and "send them again" in r for r in reasons), reasons
    assert after.status_code == 200 and after.json()["labels_attached"] == 1, after.text
    assert prober.p99() < PROBE_BOUND_MS, sorted(prober.times)[-10:]
    assert 'status="500"' not in httpx.get(f"{base}/metrics").text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"]
)
def test_a_body_not_sent_as_json_is_a_415(service, content_type):
    base, _, _, example = service
    bodies = {"/predict": example, "/feedback": {"request_id": "x", "labels": [1]}}
    for path, body in bodies.items():
        r = httpx.post(f"{base}{path}", content=json.dumps(body), headers={"content-type": content_type})
        assert r.status_code == 415, (path, r.text)
        assert "(rule: the body must be sent as application/json)" in r.json()["detail"][0]["rule"]
    ok = httpx.post(
        f"{base}/predict",
        content=json.dumps(example),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200, ok.text


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs of the test's own (mount needs root; without it the test is skipped, saying why)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_the_spool_on_a_full_disk_makes_predict_and_ready_503_naming_the_disk(
    first_run, tmp_path, small_disk
):
    root = copy_project(first_run[0], tmp_path / "project")
    base, proc = start_server(root, "--spool-dir", str(small_disk / "spool"))
    db = root / ".mlpipe" / "predictions.db"
    example = httpx.get(f"{base}/model", timeout=30).json()["input_example"]
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (1024 * 1024 - 48 * 1024))  # what the disk still takes: a few dozen answers
    locker = sqlite3.connect(db, isolation_level=None)
    answered: list[str] = []
    try:
        locker.execute("BEGIN EXCLUSIVE")  # the rows go to the spool
        with httpx.Client(base_url=base, timeout=60) as client:
            r, answered = post_until_refused(client, example, 2000)
            assert r.status_code == 503, r.text
            ready = client.get("/ready")
            assert ready.status_code == 503, ready.text
            assert "No space left on device" in ready.json()["reason"], ready.text
            rule = r.json()["detail"][0]["rule"]
            assert "No space left on device" in rule and str(small_disk) in rule, rule
            time.sleep(2)  # still not ready a while later: the disk is still full
            assert client.get("/ready").status_code == 503
            assert client.post("/predict", json=example).status_code == 503
            filler.unlink()
            locker.execute("COMMIT")
            wait_until(lambda: client.get("/ready").json().get("log") == "ok", 60)
            r = client.post("/predict", json=example)
            assert r.status_code == 200, r.text
            answered.append(r.json()["request_id"])
    finally:
        stop(proc)
        locker.close()
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        logged = dict(
            conn.execute(sa.text("select request_id, count(*) from predictions group by request_id")).all()
        )
    assert len(answered) > 5
    assert {k: logged.get(k) for k in answered} == dict.fromkeys(answered, 1), "every answer logged once"
