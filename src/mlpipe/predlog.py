"""The durable prediction log: every request's inputs, outputs, model version, request id, time and
latency, and ground-truth feedback joined later by request id. SQLAlchemy, so the embedded SQLite
default and a PostgreSQL URL work the same. Writes go through a queue to one background thread, so
the response path never waits on the database; `close()` drains the queue (count in == count logged)."""

from __future__ import annotations

import json
import queue
import threading
import time

import sqlalchemy as sa

METADATA = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("proba", sa.Float, nullable=False),
    sa.Column("prediction", sa.Integer, nullable=False),
    sa.Column("flags", sa.Text, nullable=False),
)
FEEDBACK = sa.Table(
    "feedback", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("label", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
)
_STOP = object()


class PredictionLog:
    """Append-only log with a background writer; safe to call `append` from many request threads."""

    def __init__(self, url: str, batch: int = 500, flush_s: float = 0.2):
        self.engine = sa.create_engine(url, future=True)
        METADATA.create_all(self.engine)
        self._queue: queue.Queue = queue.Queue()
        self._batch, self._flush_s = batch, flush_s
        self.written = 0
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, rows: list[dict]) -> None:
        for row in rows:
            self._queue.put(row)

    def flush(self, timeout_s: float = 10) -> bool:
        """Block until everything appended so far is written (or `timeout_s` passes)."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    def _run(self) -> None:
        pending: list[dict] = []
        waiters: list[threading.Event] = []
        stop = False
        while not stop:
            try:
                item = self._queue.get(timeout=self._flush_s)
                while True:
                    if item is _STOP:
                        stop = True
                    elif isinstance(item, threading.Event):
                        waiters.append(item)
                    else:
                        pending.append(item)
                    if stop or len(pending) >= self._batch:
                        break
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            if pending:
                self._write(pending)
                pending = []
            for w in waiters:
                w.set()
            waiters = []

    def _write(self, rows: list[dict]) -> None:
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    conn.execute(PREDICTIONS.insert(), rows)
                self.written += len(rows)
                return
            except sa.exc.OperationalError as exc:  # a locked SQLite file, a dropped connection: retry
                if attempt == 4:
                    self.errors.append(str(exc).splitlines()[0])
                time.sleep(0.1 * 2 ** attempt)

    def close(self, timeout_s: float = 30) -> None:
        """Write everything queued, then stop the writer."""
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        self.engine.dispose()

    def add_feedback(self, request_id: str, labels: list[int]) -> int:
        """Attach ground-truth labels (one per row of the request, in order); returns rows matched."""
        with self.engine.begin() as conn:
            known = conn.execute(sa.select(sa.func.count()).select_from(PREDICTIONS)
                                 .where(PREDICTIONS.c.request_id == request_id)).scalar_one()
            if known == 0:
                return 0
            now = time.time()
            conn.execute(FEEDBACK.insert(), [{"request_id": request_id, "row": i, "label": int(v), "ts": now}
                                             for i, v in enumerate(labels[:known])])
            return min(known, len(labels))


def log_rows(request_id: str, records: list[dict], proba, predictions, flags: list[dict], model_name: str,
             model_version: str, latency_ms: float) -> list[dict]:
    """The log rows of one answered request (pure)."""
    now = time.time()
    by_row: dict[int, list[dict]] = {}
    for f in flags:
        by_row.setdefault(f["record"], []).append(f)
    return [{"request_id": request_id, "row": i, "ts": now, "model_name": model_name, "model_version": model_version,
             "latency_ms": latency_ms, "inputs": json.dumps(r, sort_keys=True), "proba": float(p),
             "prediction": int(c), "flags": json.dumps(by_row.get(i, []))}
            for i, (r, p, c) in enumerate(zip(records, proba, predictions, strict=True))]
