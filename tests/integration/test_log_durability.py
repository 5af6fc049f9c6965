"""The prediction log when its database is away, as a deployed `mlpipe serve` under load sees it:

- PostgreSQL behind a TCP proxy this test owns, unreachable for 20 s mid-load (the proxy stops accepting and
  drops live connections): every answered request is in the table afterwards, exactly once;
- the SQLite file locked for 35 s by another connection (BEGIN EXCLUSIVE) mid-load: the same;
- a full spool: /ready false and /predict 503 naming the rule, until the database returns;
- kill -9 while rows wait in the spool: the next start replays them; nothing answered is lost.
Load: a few clients sending single-row requests back to back; each answered request id is kept."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from conftest import post_until_refused, start_server, stop, wait_until

from mlpipe.flows.demo import json_records

pytestmark = pytest.mark.integration
CLIENTS = 4


class Proxy:
    """A TCP forwarder on 127.0.0.1 (a fixed port across outages) to `target`; `down()` stops accepting and
    drops every live connection, `up()` accepts again."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.port = target, 0
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port, self._listener = listener.getsockname()[1], listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        # shutdown wakes the accept() blocked in the other thread (close alone leaves the socket listening)
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()  # new connections are refused
        with self._lock:
            for s in self._live:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._live.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            server = socket.create_connection(self.target)
            with self._lock:
                self._live |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Load:
    """CLIENTS threads sending single-row /predict requests back to back until stopped; keeps the request id
    of every 200 and counts every status (-1: no answer at all)."""

    def __init__(self, base: str, records: list[dict]):
        self.base, self.records = base, records
        self.ids: list[str] = []
        self.codes: dict[int, int] = {}
        self.refusals: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(k,)) for k in range(CLIENTS)]

    def _client(self, k: int) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            i = k
            while not self.stop.is_set():
                try:
                    r = client.post("/predict", json=self.records[i % len(self.records)])
                    code = r.status_code
                except httpx.TransportError:
                    code = -1
                if code == 200:
                    self.ids.append(r.json()["request_id"])
                elif code == 503 and len(self.refusals) < 5:
                    self.refusals.append(r.text)
                self.codes[code] = self.codes.get(code, 0) + 1
                i += CLIENTS

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(90)

    def answered_after(self, n: int, timeout_s: float = 60) -> None:
        wait_until(lambda: len(self.ids) >= n, timeout_s, every_s=0.1)


def traffic(root: Path, n: int = 500) -> list[dict]:
    features = yaml.safe_load((root / "params.yaml").read_text())["features"]
    cols = features["categorical"] + features["numerical"]
    frame = pd.read_parquet(root / "artifacts" / "split" / "test.parquet", columns=cols).dropna()
    return json_records(frame.sample(n=n, random_state=16), cols)


def log_counts(base: str) -> dict[str, float]:
    """The prediction log's counters and spool depth from /metrics."""
    text = httpx.get(f"{base}/metrics").text
    found = {m[0]: float(m[1]) for m in re.findall(r'mlpipe_log_rows_total\{outcome="(\w+)"\} (\S+)', text)}
    found["spool_rows"] = float(re.search(r"^mlpipe_log_spool_rows (\S+)", text, re.M)[1])
    return found


def recovered(base: str) -> bool:
    return httpx.get(f"{base}/ready").json().get("log") == "ok"


def rows_by_request(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.text("select request_id, count(*) from predictions group by request_id")).all()
        )


def outage_under_load(base: str, root: Path, outage_s: float, begin, end) -> tuple[Load, dict, dict]:
    """Load, then `begin()` the outage for `outage_s` (looking at /ready half-way), `end()` it, load 3 s more,
    and wait for the spool to drain; returns (load, /ready during the outage, the log's counts)."""
    with Load(base, traffic(root)) as load:
        load.answered_after(100)
        begin()
        time.sleep(outage_s / 2)
        during = httpx.get(f"{base}/ready", timeout=30)
        time.sleep(outage_s / 2)
        end()
        time.sleep(3)
    wait_until(lambda: recovered(base), 60)
    counts = log_counts(base)
    return load, {"status": during.status_code, **during.json()}, counts


def assert_every_answer_logged_once(load: Load, logged: dict[str, int], counts: dict) -> None:
    assert load.codes == {200: len(load.ids)}, (load.codes, load.refusals)
    assert logged == dict.fromkeys(load.ids, 1), (
        f"answered {len(load.ids)}, logged {len(logged)} requests / {sum(logged.values())} rows, "
        f"missing {len(set(load.ids) - set(logged))}, extra {len(set(logged) - set(load.ids))}"
    )
    assert counts["spooled"] > 0 and counts["replayed"] == counts["spooled"] and counts["spool_rows"] == 0
    assert counts["logged"] + counts["replayed"] == len(load.ids)


def test_postgres_away_for_20_s_under_load_loses_no_answered_row(project_copy, pg_url):
    target = sa.engine.make_url(pg_url)
    proxy = Proxy((target.host, target.port or 5432))
    via_proxy = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    base, proc = start_server(project_copy, "--log-url", via_proxy)
    try:
        load, during, counts = outage_under_load(base, project_copy, 20, proxy.down, proxy.up)
    finally:
        stop(proc)
    engine = sa.create_engine(pg_url)
    logged = rows_by_request(engine)
    engine.dispose()
    print(f"postgres 20 s away: answered {len(load.ids)}, counts {counts}, /ready during {during}")
    assert during["status"] == 200 and during["log"] == "degraded", during
    assert_every_answer_logged_once(load, logged, counts)


def test_sqlite_locked_for_35_s_under_load_loses_no_answered_row(project_copy):
    base, proc = start_server(project_copy)
    db = project_copy / ".mlpipe" / "predictions.db"
    locker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    try:
        load, during, counts = outage_under_load(
            base,
            project_copy,
            35,
            lambda: locker.execute("BEGIN EXCLUSIVE"),
            lambda: locker.execute("COMMIT"),
        )
    finally:
        stop(proc)
        locker.close()
    logged = rows_by_request(sa.create_engine(f"sqlite:///{db}"))
    print(f"sqlite locked 35 s: answered {len(load.ids)}, counts {counts}, /ready during {during}")
    assert during["status"] == 200 and during["log"] == "degraded", during
    assert_every_answer_logged_once(load, logged, counts)


def test_a_full_spool_stops_the_answers_until_the_database_returns(project_copy):
    base, proc = start_server(project_copy, "--spool-max-mb", "0.02")  # ~50 single-row requests
    db = project_copy / ".mlpipe" / "predictions.db"
    locker = sqlite3.connect(db, isolation_level=None)
    body = httpx.get(f"{base}/model").json()["input_example"]
    answered: list[str] = []
    try:
        locker.execute("BEGIN EXCLUSIVE")
        with httpx.Client(base_url=base, timeout=30) as client:
            r, answered = post_until_refused(client, body, 500)
            assert r.status_code == 503, r.text
            assert r.json()["detail"][0]["field"] == "<log>" and "spool full" in r.text and "rule:" in r.text
            ready = client.get("/ready")
            assert ready.status_code == 503 and ready.json()["log"] == "full", ready.text
            assert "spool full" in ready.json()["reason"]
            assert client.post("/predict", json=body).status_code == 503, "still refused while full"
            locker.execute("COMMIT")
            wait_until(lambda: recovered(base), 30)
            r = client.post("/predict", json=body)
            assert r.status_code == 200
            answered.append(r.json()["request_id"])
    finally:
        stop(proc)
        locker.close()
    assert len(answered) > 10
    assert rows_by_request(sa.create_engine(f"sqlite:///{db}")) == dict.fromkeys(answered, 1)


def test_kill_9_while_rows_are_spooled_loses_nothing_answered_and_the_next_start_replays(project_copy):
    base, proc = start_server(project_copy)
    db = project_copy / ".mlpipe" / "predictions.db"
    locker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    try:
        with Load(base, traffic(project_copy)) as load:
            load.answered_after(50)
            locker.execute("BEGIN EXCLUSIVE")
            load.answered_after(len(load.ids) + 300)
            os.killpg(proc.pid, signal.SIGKILL)  # mid-load: requests in flight get no answer
            load.stop.set()
            proc.wait(30)
        locker.execute("COMMIT")
    finally:
        stop(proc)
        locker.close()
    spooled = sum(1 for _ in (project_copy / ".mlpipe" / "spool").rglob("seg-*.jsonl"))
    base, proc = start_server(project_copy)
    try:
        wait_until(lambda: recovered(base), 60)
        counts = log_counts(base)
    finally:
        stop(proc)
    logged = rows_by_request(sa.create_engine(f"sqlite:///{db}"))
    unanswered = load.codes.get(-1, 0)
    print(f"kill -9: answered {len(load.ids)}, no answer {unanswered}, logged {len(logged)}, then {counts}")
    assert spooled > 0 and counts["replayed"] > 0
    assert set(load.ids) <= set(logged), f"{len(set(load.ids) - set(logged))} answered rows lost"
    assert len(logged) - len(load.ids) <= CLIENTS and set(logged.values()) == {1}, (
        "in flight (one request per client): logged at most once, or not at all"
    )
