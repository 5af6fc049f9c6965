"""The durable prediction log: every request's inputs, outputs, model version, request id, time and
latency, and ground-truth feedback joined later by request id. SQLAlchemy, so the embedded SQLite
default and a PostgreSQL URL work the same.

Writes go through a queue to one background writer thread, which commits them in batches (a batch is what
queued while the last one was written: group commit) and resolves each append's future once its rows are
durable: committed, or, while the database is slow or away, fsync'd in the local spool (`serving.spool`).
A replayer thread inserts spooled segments, oldest first, once the database answers again, exactly once:
(request_id, row) is unique and a replay inserts ON CONFLICT DO NOTHING, so a replay cut short by a crash
and done again adds nothing twice. While rows wait in the spool, new rows queue behind them (the table
keeps the answer order). Past the spool's bound the future fails with SpoolFull: the service then refuses
the request instead of answering it unlogged. `close()` drains the queue; what is still spooled stays on
disk, and the next process on the same spool directory replays it."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from operator import itemgetter
from pathlib import Path

import orjson
import sqlalchemy as sa

from mlpipe.runtime.logs import event
from mlpipe.serving.settings import SERVE
from mlpipe.serving.spool import Spool, SpoolFull, SpoolUnwritable, read_segment, spool_key

DB_TIMEOUT_S = SERVE.log_timeout_s  # a write slower than this (lock, statement, connect): to the spool
RETRY_S = 1.0  # the replayer's pause between attempts while the database is away
SPOOL_MAX_BYTES = SERVE.spool_max_bytes  # ~1.3M single-row requests of the flights model (~400 B a row)

METADATA = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # no index of its own: ROW_KEY's (request_id, row) serves lookups by request id, one B-tree less to keep
    # per row written (~1 ms of CPU per 1k-row insert here); tables made before keep theirs
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("proba", sa.Float, nullable=False),
    sa.Column("prediction", sa.Text, nullable=False),  # the answer as text: class label or value
    sa.Column("flags", sa.Text, nullable=False),
)
# The exactly-once key of replays; created on tables made before it too (`PredictionLog.__init__`).
ROW_KEY = sa.Index("ux_predictions_request_row", PREDICTIONS.c.request_id, PREDICTIONS.c.row, unique=True)
# A model version's rows in the monitor's window, counted and sampled without walking the other versions'
# (counting 300k of 1M rows: 0.01 s instead of 0.2 s); costs ~0.8 ms per 1k rows written (~10% of the
# insert without its fsync). Created on tables made before it too.
VERSION_KEY = sa.Index("ix_predictions_version", PREDICTIONS.c.model_version, PREDICTIONS.c.id)
FEEDBACK = sa.Table(
    "feedback",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("label", sa.Text, nullable=False),  # the true class label or value, as text
    sa.Column("ts", sa.Float, nullable=False),
)
LOGGED_COLUMNS = [c.name for c in PREDICTIONS.columns if c.name != "id"]  # what log_rows gives per row
_STOP = object()


def log_engine(url: str, timeout_s: float = DB_TIMEOUT_S) -> sa.Engine:
    """An engine whose waits are bounded by `timeout_s`: SQLite's lock wait; PostgreSQL's connect, statement
    and unacknowledged-send times (libpq drivers): a database that is away fails fast instead of hanging."""
    parsed = sa.engine.make_url(url)
    args: dict = {}
    if parsed.get_backend_name() == "sqlite":
        args = {"timeout": timeout_s}
    elif parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg", "psycopg2"):
        ms = int(timeout_s * 1000)
        args = {
            "connect_timeout": max(1, round(timeout_s)),
            "options": f"-c statement_timeout={ms}",
            "tcp_user_timeout": ms,
        }
    engine = sa.create_engine(url, future=True, connect_args=args)
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_wal)
    return engine


def _sqlite_wal(dbapi_connection, _record) -> None:
    """Write-ahead log, synced at every commit: as durable as SQLite's default rollback journal (a commit
    survives a crash and a power cut) at one fsync per commit instead of several (a 1k-row commit: ~12 ms ->
    ~1.4 ms; one row: p99 18 -> 4 ms, measured here), and readers (the monitor) never block the writer."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def insert_once(dialect_name: str):
    """INSERT ... ON CONFLICT (request_id, row) DO NOTHING on SQLite and PostgreSQL (else a plain insert)."""
    if dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return PREDICTIONS.insert()
    return insert(PREDICTIONS).on_conflict_do_nothing(index_elements=["request_id", "row"])


def _is_outage(exc: sa.exc.DBAPIError) -> bool:
    """An error that says the database is away or busy (retry later), not that it refuses these rows."""
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or exc.connection_invalidated


def _resolve(done: Future, exc: BaseException | None = None) -> None:
    """Settle an append's future (a request that went away may have cancelled it: nothing to tell)."""
    if done.set_running_or_notify_cancel():
        if exc is None:
            done.set_result(True)
        else:
            done.set_exception(exc)


class PredictionLog:
    """Append-only log with a background writer and a durable spool; safe to call `append` from many request
    threads. `spool_dir`: the spool's root (a directory per database under it); None: no spool, a batch the
    database refuses fails its futures."""

    def __init__(
        self,
        url: str,
        batch: int = 500,
        flush_s: float = 0.0,
        spool_dir: Path | None = None,
        spool_max_bytes: int = SPOOL_MAX_BYTES,
        spool_max_rows: int = 0,
        timeout_s: float = DB_TIMEOUT_S,
        retry_s: float = RETRY_S,
    ):
        self.engine = log_engine(url, timeout_s)
        self.timeout_s = timeout_s  # the bound of each database wait
        METADATA.create_all(self.engine)
        ROW_KEY.create(self.engine, checkfirst=True)
        VERSION_KEY.create(self.engine, checkfirst=True)
        insert = PREDICTIONS.insert().compile(dialect=self.engine.dialect, column_keys=LOGGED_COLUMNS)
        # With a positional paramstyle (SQLite's), rows go to the driver's executemany as tuples: SQLAlchemy's
        # per-row handling of dicts was ~30% of the write (~1.7 ms per 1k rows, holding the GIL).
        self._insert_sql = str(insert) if insert.positional else None
        self._row_values = itemgetter(*insert.positiontup) if insert.positional else None
        self._insert_once = insert_once(self.engine.dialect.name)
        self.spool = (
            Spool(spool_dir / spool_key(url), spool_max_bytes, spool_max_rows)
            if spool_dir is not None
            else None
        )
        self._queue: queue.Queue = queue.Queue()
        self._batch, self._flush_s, self._retry_s = batch, flush_s, retry_s
        self.written = 0  # rows committed straight to the database
        self.spooled = 0  # rows stored in the spool
        self.replayed = 0  # spooled rows committed by a replay
        self.refused = 0  # rows neither committed nor spooled (their requests were failed)
        self.errors: list[str] = []
        self.db_error: str | None = None  # the last outage, while the spool holds rows
        self.full: str | None = None  # why the last batch could not be spooled, until a replay makes room
        self._unwritable = False  # `full` because the spool's disk refused a write (not its bound)
        self._stop_replay = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        self._replayer = None
        if self.spool is not None:
            if self.spool.active:
                event(
                    "prediction_log_spool_found",
                    rows=self.spool.rows,
                    bytes=self.spool.nbytes,
                    directory=str(self.spool.dir),
                    adopted_segments=self.spool.adopted,
                )
            self._replayer = threading.Thread(
                target=self._replay_loop, name="prediction-log-replay", daemon=True
            )
            self._replayer.start()

    def append(self, rows: list[dict]) -> Future:
        """Queue rows; the future's result is True once they are durable (SpoolFull or the database's error
        when they cannot be)."""
        done: Future = Future()
        self._queue.put((rows, done))  # one hand-over per request: a queue put per row cost ~1 ms per 1k rows
        return done

    def append_later(self, make_rows: Callable[[], list[dict]]) -> Future:
        """Queue the rows `make_rows()` builds, called on the writer thread: the request path hands its data
        over (building and serialising 1k rows costs ~5 ms). The future as for `append`; a failure to build
        fails it (and is kept in `errors`)."""
        done: Future = Future()
        self._queue.put((make_rows, done))
        return done

    def flush(self, timeout_s: float = 10) -> bool:
        """Block until everything appended so far is durable (or `timeout_s` passes)."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    def health(self) -> dict:
        """`log`: "ok" (rows go to the database), "degraded" (rows wait in the spool, which has room) or
        "full" (the spool is full: requests are refused); with the reason and the spool's depth."""
        spool = self.spool
        depth = {"spool_rows": spool.rows, "spool_bytes": spool.nbytes} if spool is not None else {}
        if self.full:
            return {
                "log": "full",
                "log_reason": f"prediction log: {self.full}; database: {self.db_error}",
                **depth,
            }
        if spool is not None and spool.active:
            return {
                "log": "degraded",
                "log_reason": f"rows spooled, database: {self.db_error or 'replaying'}",
                **depth,
            }
        return {"log": "ok", **depth}

    def _run(self) -> None:
        pending: list[dict] = []
        futures: list[Future] = []
        waiters: list[threading.Event] = []
        stop = False
        while not stop:
            try:
                item = self._queue.get(timeout=0.5)
                # A batch is what queued while the last one was written (group commit); with flush_s > 0 rows
                # also wait up to flush_s for company (unless a batch fills, a flush or the stop comes).
                deadline = time.monotonic() + self._flush_s
                while True:
                    if item is _STOP:
                        stop = True
                    elif isinstance(item, threading.Event):
                        waiters.append(item)
                    else:
                        rows, done = item
                        if callable(rows):
                            try:
                                rows = rows()
                            except Exception as exc:  # noqa: BLE001 - the writer keeps going; the reason is kept
                                reason = f"building log rows: {type(exc).__name__}: {exc}".splitlines()[0]
                                self.errors.append(reason)
                                _resolve(done, RuntimeError(reason))
                                rows = None
                        if rows is not None:
                            pending += rows
                            futures.append(done)
                    if stop or waiters or len(pending) >= self._batch:
                        break
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pass
            if futures:
                self._store(pending, futures)
                pending, futures = [], []
            for w in waiters:
                w.set()
            waiters = []

    def _store(self, rows: list[dict], futures: list[Future]) -> None:
        """Make a batch durable (the database, else the spool) and resolve its futures."""
        try:
            self._store_rows(rows)
        except Exception as exc:  # noqa: BLE001 - the requests behind these rows are failed with the reason
            self.refused += len(rows)
            if not isinstance(exc, SpoolFull):
                self.errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
            for f in futures:
                _resolve(f, exc)
            return
        for f in futures:
            _resolve(f)

    def _store_rows(self, rows: list[dict]) -> None:
        if not rows:
            return
        spool = self.spool
        if spool is not None and spool.active:
            self._spool(rows)  # behind the rows already waiting
            return
        try:
            with self.engine.begin() as conn:
                if self._insert_sql:
                    conn.exec_driver_sql(self._insert_sql, list(map(self._row_values, rows)))
                else:
                    conn.execute(PREDICTIONS.insert(), rows)
            self.written += len(rows)
            return
        except sa.exc.DBAPIError as exc:  # locked, slow, away, or refusing these rows: the spool keeps them
            if spool is None:
                raise
            self.db_error = f"{type(exc.orig).__name__}: {exc.orig}".splitlines()[0]
            event("prediction_log_degraded", error=self.db_error, level=30)
        self._spool(rows)

    def _spool(self, rows: list[dict]) -> None:
        try:
            self.spool.append(rows)
        except SpoolFull as exc:
            if not self.full:
                event("prediction_log_spool_full", reason=str(exc), level=40)
            self._unwritable = isinstance(exc, SpoolUnwritable)
            self.full = str(exc)
            raise
        self._room_made()
        self.spooled += len(rows)

    def _room_made(self) -> None:
        if self.full and self._unwritable:
            event("prediction_log_spool_writable", directory=str(self.spool.dir))
        self.full, self._unwritable = None, False

    def _room_again(self) -> bool:
        """After the spool's disk refused a write: True once it takes one again, or, with no row waiting in
        the spool (new rows would go to the database), once the database takes writes."""
        if self.spool.writable() is None:
            return True
        return not self.spool.active and self._database_writable()

    def _database_writable(self) -> bool:
        """True when a write transaction gets through now (a delete of nothing: no row changes)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(FEEDBACK.delete().where(FEEDBACK.c.id < 0))
        except sa.exc.DBAPIError:
            return False
        return True

    def _replay_loop(self) -> None:
        """Replay the spool, oldest segment first, whenever it holds rows; after a failure wait retry_s."""
        while True:
            ok = self.replay_once()
            if self.full and self._unwritable and self._room_again():
                self._room_made()
            if self._stop_replay.is_set() and (not ok or not self.spool.active):
                return
            if not ok or not self.spool.active:
                self._stop_replay.wait(self._retry_s)

    def replay_once(self) -> bool:
        """Commit the oldest spooled segment and delete it; False when the database is still away."""
        segment = self.spool.oldest()
        if segment is None:
            if (
                not self._unwritable
            ):  # an empty spool has room (a batch larger than the bound is refused again)
                self.full = None
            return True
        rows = read_segment(segment)
        try:
            with self.engine.begin() as conn:
                if rows:
                    conn.execute(self._insert_once, rows)
        except sa.exc.DBAPIError as exc:
            if _is_outage(exc):
                self.db_error = f"{type(exc.orig).__name__}: {exc.orig}".splitlines()[0]
                return False
            where = self.spool.set_aside(segment, str(exc).splitlines()[0])
            self.errors.append(f"segment refused by the database, set aside: {where}")
            event(
                "prediction_log_segment_refused", segment=str(where), error=str(exc).splitlines()[0], level=40
            )
            return True
        self.spool.remove(segment)
        self.replayed += len(rows)
        self._room_made()  # a segment's space is free again
        if not self.spool.rows:
            event("prediction_log_recovered", replayed=self.replayed)
            self.db_error = None
        return True

    def close(self, timeout_s: float = 30) -> None:
        """Make everything queued durable, then stop the writer; replay what the spool holds while the
        database answers (for up to `timeout_s`); what is left stays spooled for the next process."""
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._replayer is not None:
            self._stop_replay.set()
            self._replayer.join(timeout_s)
            self.spool.close()
        self.engine.dispose()

    def rows_of(self, request_id: str) -> int:
        """How many rows the logged request `request_id` has (0: none logged)."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count())
                .select_from(PREDICTIONS)
                .where(PREDICTIONS.c.request_id == request_id)
            ).scalar_one()

    def add_feedback(self, request_id: str, labels: list) -> int:
        """Attach ground-truth labels (one per logged row of the request, i.e. per answered record, in order:
        a refused record has no row); labels sent again for the same request replace the earlier ones (a
        correction, never a second vote). Returns rows matched."""
        with self.engine.begin() as conn:
            rows = (
                conn.execute(
                    sa.select(PREDICTIONS.c.row)
                    .where(PREDICTIONS.c.request_id == request_id)
                    .order_by(PREDICTIONS.c.row)
                )
                .scalars()
                .all()
            )
            if not rows:
                return 0
            now = time.time()
            conn.execute(FEEDBACK.delete().where(FEEDBACK.c.request_id == request_id))
            conn.execute(
                FEEDBACK.insert(),
                [
                    {"request_id": request_id, "row": row, "label": answer_text(v), "ts": now}
                    for row, v in zip(rows, labels, strict=False)
                ],
            )
            return min(len(rows), len(labels))


def log_rows(
    request_id: str,
    records: list[dict],
    proba,
    predictions,
    flags: list[dict],
    model_name: str,
    model_version: str,
    latency_ms: float,
    ts: float | None = None,
    inputs: list[str] | None = None,
    rows: list[int] | None = None,
) -> list[dict]:
    """The log rows of one answered request (pure; `ts` is the answer's time, now by default; `inputs` the
    records' `inputs_json` when it was made already; `rows`: each record's position in the request, when
    some of its records were refused (they are not logged), else 0, 1, ...)."""
    now = time.time() if ts is None else ts
    by_row: dict[int, list[dict]] = {}
    for f in flags:
        by_row.setdefault(f["record"], []).append(f)
    inputs = inputs_json(records) if inputs is None else inputs
    texts = answer_texts(predictions)
    probas = proba.tolist() if hasattr(proba, "tolist") else list(proba)
    positions = range(len(probas)) if rows is None else rows
    return [
        {
            "request_id": request_id,
            "row": i,
            "ts": now,
            "model_name": model_name,
            "model_version": model_version,
            "latency_ms": latency_ms,
            "inputs": text,
            "proba": float(p),
            "prediction": c,
            "flags": json.dumps(by_row[i]) if i in by_row else "[]",
        }
        for i, text, p, c in zip(positions, inputs, probas, texts, strict=True)
    ]


def answer_text(value) -> str:
    """A class label or predicted value as the log stores it: ints and text as they read, floats exactly."""
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return repr(float(value))
    if type(value).__name__.startswith(("int", "uint", "bool")):
        return str(int(value))
    return str(value)


def answer_texts(values) -> list[str]:
    """answer_text of each value; each distinct label is converted once (a classifier has a few)."""
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    keys = list(zip(map(type, values), values, strict=True))  # by type: 1, 1.0, True are one dict key
    try:
        texts = {k: answer_text(k[1]) for k in set(keys)}
    except TypeError:  # an unhashable value: one at a time
        return [answer_text(v) for v in values]
    return [texts[k] for k in keys]


_SORTED_JSON = json.JSONEncoder(sort_keys=True).encode  # what json.dumps(x, sort_keys=True) builds per call


def inputs_json(records: list) -> list[str]:
    """Each record as JSON text with its keys sorted (compact, UTF-8: orjson; `json.dumps(record,
    sort_keys=True)` for what orjson cannot write, such as ints past 64 bits); a batch of non-empty objects is
    encoded in one pass and cut between objects."""
    if records and all(type(r) is dict and r for r in records):
        try:
            whole = orjson.dumps(records, option=orjson.OPT_SORT_KEYS).decode()
        except (orjson.JSONEncodeError, TypeError):
            whole = None
        if whole is not None:
            # Between two objects of the list the text is `},{"`, which no JSON string can hold (a quote
            # inside one is escaped); only nested lists of objects add more, and then the count tells and
            # the records go one by one.
            parts = whole[3:-2].split('},{"')
            if len(parts) == len(records):
                return ['{"' + part + "}" for part in parts]
    return [_encode_one(r) for r in records]


def _encode_one(record) -> str:
    try:
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return _SORTED_JSON(record)


def default_log_url(root: Path) -> str:
    """The embedded default: SQLite under the project's .mlpipe/ (created)."""
    state = root / ".mlpipe"
    state.mkdir(exist_ok=True)
    return f"sqlite:///{state / 'predictions.db'}"
