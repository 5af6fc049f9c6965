"""For tests only: hold a run at a named moment, so that a test signals it exactly there
(tests/integration/test_crash.py). Inert unless MLPIPE_PAUSE_AT is set.

A moment is named by the log line the run writes there: an mlpipe event (`event=stage_start stage=train`,
inside the stage once DVC has removed its outputs; `event=snapshot_done`, before the data commit) or
Prefect's line at a task's end (`Task run 'snapshot-*Finished` matches `Task run 'snapshot-1a2' - Finished
in state Completed()`). With MLPIPE_PAUSE_AT set to a pattern of such a line (a part of it, `*` for any
text) and MLPIPE_PAUSE_DIR to a directory, the thread that writes the first matching line writes
`<dir>/paused` (pid, then the line) and waits there until `<dir>/resume` exists: the test meanwhile sends
its signal, which the process meets at that line.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from pathlib import Path

PAUSE_AT, PAUSE_DIR = "MLPIPE_PAUSE_AT", "MLPIPE_PAUSE_DIR"
POLL_S = 0.05


def record_line(record: logging.LogRecord) -> str:
    """The record's message as the console shows it, with Prefect's `Task run '<name>' - ` prefix."""
    message = record.getMessage()
    for kind, attr in (("Task run", "task_run_name"), ("Flow run", "flow_run_name")):
        name = getattr(record, attr, None)
        if name:
            return f"{kind} '{name}' - {message}"
    return message


class PauseAtLine(logging.Handler):
    """Waits in the thread that logs the first line matching `text` (see the module's docstring)."""

    def __init__(self, text: str, directory: Path) -> None:
        super().__init__()
        self.text, self.directory, self.done = text, directory, False

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: other threads log on
        if self.done:
            return False
        line = record_line(record)
        if not fnmatch.fnmatchcase(line, f"*{self.text}*"):
            return False
        self.done = True
        # written aside, then renamed: a test that sees `paused` reads it whole, even after a kill -9
        (self.directory / "paused.tmp").write_text(f"{os.getpid()}\n{line}\n")
        (self.directory / "paused.tmp").replace(self.directory / "paused")
        while not (self.directory / "resume").exists():
            time.sleep(POLL_S)  # a signal's handler runs here (the main thread) and unwinds from this line
        return True

    def emit(self, record: logging.LogRecord) -> None:  # handle() does the work
        return None


def install_pause_hook() -> None:
    """With MLPIPE_PAUSE_AT set, the pause handler on the root logger (which mlpipe's and Prefect's run
    logs reach); without it, nothing. Call after Prefect has configured logging (it replaces the root's
    handlers)."""
    text = os.environ.get(PAUSE_AT)
    root = logging.getLogger()
    if not text or any(isinstance(h, PauseAtLine) for h in root.handlers):
        return
    root.addHandler(PauseAtLine(text, Path(os.environ.get(PAUSE_DIR, "."))))
