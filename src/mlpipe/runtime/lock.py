"""One retrain at a time per project: an advisory file lock the OS releases when its holder dies."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from mlpipe.errors import LockBusy


@contextmanager
def project_lock(path: Path, timeout_s: float, poll_s: float = 0.5):
    """Hold an exclusive lock on `path`; wait up to `timeout_s` for another holder (even after a
    kill -9 the kernel frees the lock, so a crash never leaves the project locked)."""
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
                    holder = fh.read().strip() or "unknown"
                    raise LockBusy(
                        f"{path}: another run (pid {holder}) still holds the project lock after "
                        f"{timeout_s:.0f}s (rule: one retrain at a time); nothing was changed"
                    ) from None
                time.sleep(poll_s)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()  # closing the descriptor releases the lock
