"""Advisory file locks the OS releases when their holder dies: one retrain at a time per project
(project_lock), and one registry move at a time per model (registry.aliases.registry_lock builds on
held_lock)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlpipe.errors import LockBusy


@contextmanager
def held_lock(
    path: Path, timeout_s: float, note: str, busy: Callable[[str], str], poll_s: float = 0.5
) -> Iterator[None]:
    """Hold an exclusive lock on `path`, writing `note` (who holds it, doing what) into it; wait up to
    `timeout_s` for another holder, then raise LockBusy(busy(the holder's note)). Even after a kill -9 the
    kernel frees the lock, so a crash never leaves it held."""
    fh = open(path, "a+")
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    raise LockBusy(busy(fh.read().strip() or "unknown")) from None
                time.sleep(poll_s)
        fh.seek(0)
        fh.truncate()
        fh.write(note)
        fh.flush()
        yield
    finally:
        fh.close()  # closing the descriptor releases the lock


def project_lock(path: Path, timeout_s: float, poll_s: float = 0.5):
    """Hold the project's lock (one retrain at a time); wait up to `timeout_s` for another run."""
    return held_lock(
        path,
        timeout_s,
        str(os.getpid()),
        lambda holder: (
            f"{path}: another run (pid {holder}) still holds the project lock after "
            f"{timeout_s:.0f}s (rule: one retrain at a time); nothing was changed"
        ),
        poll_s,
    )
