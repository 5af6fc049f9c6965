"""The tests' pause hook: inert without MLPIPE_PAUSE_AT; with it, the first log line matching it holds
its thread (a file says so) until told to go on, and a signal meanwhile unwinds from that line."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import pytest

from mlpipe.runtime.guard import Stopped, stop_on_signals
from mlpipe.runtime.pause import PAUSE_AT, PAUSE_DIR, PauseAtLine, install_pause_hook, record_line


@pytest.fixture
def no_hook():
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, PauseAtLine)]:
        root.removeHandler(handler)


def _wait_for(path, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.02)


def test_without_the_variable_nothing_is_installed(monkeypatch, no_hook):
    monkeypatch.delenv(PAUSE_AT, raising=False)
    install_pause_hook()
    assert not any(isinstance(h, PauseAtLine) for h in logging.getLogger().handlers)


def test_the_first_matching_line_holds_its_thread_until_resumed(monkeypatch, tmp_path, no_hook):
    monkeypatch.setenv(PAUSE_AT, "event=stage_start*stage=train")
    monkeypatch.setenv(PAUSE_DIR, str(tmp_path))
    install_pause_hook()
    install_pause_hook()  # once only
    assert sum(isinstance(h, PauseAtLine) for h in logging.getLogger().handlers) == 1
    log = logging.getLogger("mlpipe.test_pause")
    log.setLevel(logging.INFO)
    log.info("event=stage_start stage=split")  # no match: goes on
    done = []
    worker = threading.Thread(
        target=lambda: (log.info("event=stage_start in_process=True stage=train"), done.append(1))
    )
    worker.start()
    _wait_for(tmp_path / "paused")
    pid, line = (tmp_path / "paused").read_text().splitlines()
    assert int(pid) == os.getpid() and line == "event=stage_start in_process=True stage=train"
    log.info("event=stage_start stage=train")  # another thread logs on meanwhile, and only one pauses
    time.sleep(0.2)
    assert done == [], "held"
    (tmp_path / "resume").write_text("")
    worker.join(timeout=10)
    assert done == [1]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals: main thread")
def test_a_signal_meets_the_main_thread_at_the_paused_line(tmp_path):
    hook = PauseAtLine("event=snapshot_done", tmp_path)
    log = logging.getLogger("mlpipe.test_pause_signal")
    log.addHandler(hook)
    log.setLevel(logging.INFO)
    sender = threading.Thread(
        target=lambda: (_wait_for(tmp_path / "paused"), os.kill(os.getpid(), signal.SIGTERM))
    )
    sender.start()
    try:
        with pytest.raises(Stopped), stop_on_signals():
            log.info("event=snapshot_done data_md5=abc")
    finally:
        log.removeHandler(hook)
        sender.join(timeout=10)


def test_prefect_run_lines_are_matched_as_the_console_shows_them():
    args = ("prefect.task_runs", logging.INFO, "", 0, "Finished in state %s", ("ok",), None)
    record = logging.LogRecord(*args)
    assert record_line(record) == "Finished in state ok"
    record.task_run_name = "snapshot-1a2"
    assert record_line(record) == "Task run 'snapshot-1a2' - Finished in state ok"
