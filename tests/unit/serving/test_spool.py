"""The prediction log's spool: frames, replay order, the bound, slots; and the log on a real SQLite file
that another connection locks (no mocks: the lock is SQLite's own)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from mlpipe.serving.prediction_log import PredictionLog, log_rows
from mlpipe.serving.spool import Spool, SpoolFull, frame_of, frames_in, read_segment, spool_key


def rows(request_id: str, n: int = 1) -> list[dict]:
    return log_rows(
        request_id, [{"temp": 50.0 + i} for i in range(n)], [0.25] * n, [0] * n, [], "m", "1", 1.5, ts=1.0
    )


def test_a_frame_reads_back_and_a_torn_or_corrupt_tail_ends_the_segment():
    a, b = rows("a", 2), rows("b")
    data = frame_of(a) + frame_of(b)
    assert frames_in(data) == ([a, b], 0)
    torn = data + frame_of(rows("c"))[:-7]
    assert frames_in(torn) == ([a, b], len(frame_of(rows("c"))) - 7), "a crash mid-write: the tail is dropped"
    flipped = bytearray(data)
    flipped[len(frame_of(a)) + 20] ^= 1  # one bit of b's JSON
    assert frames_in(bytes(flipped))[0] == [a], "a corrupt frame fails its crc and ends the readable part"
    assert frames_in(b"zz not a frame\n") == ([], 15)


def test_segments_replay_oldest_first_and_the_bound_counts_bytes_and_rows(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000, max_rows=6, segment_bytes=600)
    for k in range(5):
        assert spool.append(rows(f"r{k}"))
    assert spool.rows == 5 and spool.nbytes == sum(len(frame_of(rows(f"r{k}"))) for k in range(5))
    with pytest.raises(SpoolFull, match="rows"):
        spool.append(rows("big", 2))
    order = []
    while (segment := spool.oldest()) is not None:
        order += [r["request_id"] for r in read_segment(segment)]
        spool.remove(segment)
    assert order == [f"r{k}" for k in range(5)] and not spool.active and spool.rows == spool.nbytes == 0
    assert not spool.append(rows("x"), only_if_active=True), "an empty spool takes nothing behind nothing"
    tight = Spool(tmp_path / "tight", max_bytes=len(frame_of(rows("a"))))
    assert tight.append(rows("a"))
    with pytest.raises(SpoolFull, match="bytes"):
        tight.append(rows("b"))


def test_a_second_process_gets_its_own_slot_and_the_next_one_adopts_what_a_dead_one_left(tmp_path):
    first = Spool(tmp_path, max_bytes=1 << 20)
    first.append(rows("old"))
    second = Spool(tmp_path, max_bytes=1 << 20)
    assert first.dir != second.dir and not second.active, "a live spool is never shared"
    second.append(rows("newer"))
    first.close()
    second.close()
    third = Spool(tmp_path, max_bytes=1 << 20)
    assert third.adopted == 1 and third.rows == 2
    got = []
    while (segment := third.oldest()) is not None:
        got += [r["request_id"] for r in read_segment(segment)]
        third.remove(segment)
    assert sorted(got) == ["newer", "old"]
    assert spool_key("postgresql://u:secret@h/db") == spool_key("postgresql://u:other@h/db")
    assert spool_key("sqlite:///a.db") != spool_key("sqlite:///b.db")


def test_a_locked_sqlite_log_spools_answers_and_replays_them_exactly_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(url, spool_dir=tmp_path / "spool", timeout_s=0.2, retry_s=0.1)
    assert log.append(rows("before")).result(10)
    locker = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    futures = [log.append(rows(f"during-{k}", 3)) for k in range(20)]
    assert all(f.result(10) for f in futures), "durable (spooled) while the database is locked"
    assert log.health()["log"] == "degraded" and log.spooled == 60
    locker.execute("COMMIT")
    for _ in range(100):
        if log.health()["log"] == "ok":
            break
        log.flush(1)
        time.sleep(0.05)
    assert log.health()["log"] == "ok" and log.replayed == 60
    # A replay again of the same rows (a crash between the commit and the segment's deletion) adds nothing.
    seg_rows = [r for k in range(20) for r in rows(f"during-{k}", 3)]
    with log.engine.begin() as conn:
        conn.execute(log._insert_once, seg_rows)
    log.close()
    with sqlite3.connect(tmp_path / "log.db") as db:
        count, ids = db.execute("select count(*), count(distinct request_id) from predictions").fetchone()
        order = [r[0] for r in db.execute("select request_id from predictions where row = 0 order by id")]
    assert (count, ids) == (61, 21)
    assert order == ["before"] + [f"during-{k}" for k in range(20)], "the answer order is kept"


def test_a_full_spool_fails_the_rows_and_a_new_log_replays_what_the_last_one_left(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    locker = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    log = PredictionLog(url, spool_dir=tmp_path / "spool", spool_max_rows=5, timeout_s=0.2, retry_s=0.1)
    locker.execute("BEGIN EXCLUSIVE")
    assert log.append(rows("a", 4)).result(10)
    with pytest.raises(SpoolFull):
        log.append(rows("b", 2)).result(10)
    assert log.health()["log"] == "full" and log.refused == 2
    log.close(timeout_s=2)  # the database is still locked: the spool keeps the rows
    locker.execute("COMMIT")
    again = PredictionLog(url, spool_dir=tmp_path / "spool", timeout_s=0.2, retry_s=0.1)
    assert again.flush(5)
    for _ in range(100):
        if again.replayed == 4:
            break
        time.sleep(0.05)
    again.close()
    assert again.replayed == 4 and again.rows_of("a") == 4 and again.rows_of("b") == 0


def test_a_request_that_went_away_does_not_stop_the_writer(tmp_path):
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}", spool_dir=tmp_path / "spool")
    log.append(rows("gone")).cancel()  # its client left before the rows were stored
    assert log.append(rows("next")).result(10)
    log.close()
    assert log.rows_of("next") == 1


def test_a_partly_refused_request_logs_its_answered_records_under_their_positions(tmp_path):
    """Records 0 and 2 answered, 1 refused: two rows, numbered as the records were; feedback is one label per
    answered record and lands on those rows."""
    flag = {
        "record": 2,
        "field": "dest",
        "value": "NEW",
        "rule": "category never seen in training (accepted)",
    }
    answered = log_rows(
        "q", [{"temp": 1.0}, {"temp": 3.0}], [0.2, 0.7], [0, 1], [flag], "m", "1", 1.5, rows=[0, 2]
    )
    assert [(r["row"], r["inputs"], r["flags"] != "[]") for r in answered] == [
        (0, '{"temp":1.0}', False),
        (2, '{"temp":3.0}', True),
    ]
    log = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
    log.append(answered).result(10)
    assert log.rows_of("q") == 2 and log.add_feedback("q", [1, 0]) == 2
    log.close()
    with sqlite3.connect(tmp_path / "p.db") as db:
        labels = db.execute("select row, label from feedback where request_id = 'q' order by row").fetchall()
    assert labels == [(0, "1"), (2, "0")]
