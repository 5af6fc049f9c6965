"""The log's stores refusing: a spool whose disk refuses writes (/dev/full: every write is ENOSPC) and
/feedback while another connection holds the SQLite file locked (no mocks: the lock is SQLite's own)."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace

import pytest

from mlpipe.serving.feedback import answer_feedback
from mlpipe.serving.prediction_log import PredictionLog, log_rows
from mlpipe.serving.probes import probe_answers
from mlpipe.serving.spool import Spool, SpoolUnwritable, frames_in

FULL = "/dev/full"


def rows(request_id: str) -> list[dict]:
    return log_rows(request_id, [{"temp": 50.0}], [0.25], [0], [], "m", "1", 1.5, ts=1.0)


@pytest.fixture
def full_disk_spool(tmp_path):
    """A spool whose next segment is /dev/full (the spool's own files, before it, are on a real disk)."""
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(rows("kept"))
    spool._seal()
    (spool.dir / "seg-000002.jsonl").symlink_to(FULL)
    spool._seq = 1
    return spool


@pytest.mark.skipif(not __import__("os").path.exists(FULL), reason="no /dev/full on this system")
def test_a_spool_whose_disk_is_full_refuses_in_one_line_naming_the_disk(full_disk_spool):
    with pytest.raises(SpoolUnwritable) as refused:
        full_disk_spool.append(rows("lost"))
    assert str(refused.value).startswith("spool unwritable: No space left on device (ENOSPC) in ")
    assert str(full_disk_spool.dir) in str(refused.value)
    assert full_disk_spool.rows == 1, "the refused batch is not counted as stored"


def test_a_torn_frame_is_cut_off_so_later_frames_stay_readable(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(rows("a"))
    seg, file = spool._open

    class FillsUp:  # the disk takes 10 bytes of the next frame, then refuses
        def __init__(self):
            self.calls = 0

        def write(self, data):
            self.calls += 1
            if self.calls == 1:
                return file.write(bytes(data[:10]))
            raise OSError(28, "No space left on device")

        def truncate(self, size):
            return file.truncate(size)

        def fileno(self):
            return file.fileno()

    spool._open = (seg, FillsUp())
    with pytest.raises(SpoolUnwritable):
        spool.append(rows("torn"))
    spool._open = (seg, file)
    spool.append(rows("b"))
    batches, torn = frames_in(seg.path.read_bytes())
    assert [b[0]["request_id"] for b in batches] == ["a", "b"] and torn == 0


def test_feedback_while_the_database_is_locked_is_a_503_naming_the_lock(tmp_path):
    db = tmp_path / "predictions.db"
    log = PredictionLog(f"sqlite:///{db}", spool_dir=tmp_path / "spool", timeout_s=0.3)
    try:
        assert log.append(rows("r1")).result(10)
        served = SimpleNamespace(task="binary", classes=[0, 1])
        body = json.dumps({"request_id": "r1", "labels": [1]}).encode()
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            refused = answer_feedback(body, served, None, log)
        finally:
            locker.execute("COMMIT")
            locker.close()
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        rule = json.loads(refused.body)["detail"][0]["rule"]
        assert rule.startswith("feedback not stored: database: OperationalError: database is locked"), rule
        assert answer_feedback(body, served, None, log) == {"request_id": "r1", "labels_attached": 1}
    finally:
        log.close()


def test_ready_is_503_with_the_reason_while_the_spool_cannot_keep_answers(tmp_path):
    log = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}", spool_dir=tmp_path / "spool")
    try:
        holder = SimpleNamespace(served=SimpleNamespace(version="3"), load_error=None)
        ready = probe_answers(holder, log, None)["/ready"]
        assert ready()[0] == 200
        log.full, log.db_error = "spool unwritable: No space left on device (ENOSPC) in /x", "locked"
        status, _, body = ready()
        assert status == 503 and "No space left on device" in json.loads(body)["reason"]
    finally:
        log.full = None
        log.close()
