"""One retrain at a time: the project lock waits, times out with a clear message, survives kill -9."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mlpipe.errors import LockBusy
from mlpipe.runtime.lock import project_lock


def test_second_holder_times_out_naming_the_first(tmp_path):
    path = tmp_path / ".mlpipe.lock"
    with project_lock(path, timeout_s=1):
        t0 = time.monotonic()
        with pytest.raises(LockBusy, match=r"another run \(pid \d+\) still holds the project lock"):
            with project_lock(path, timeout_s=0.3, poll_s=0.05):
                pass
        assert time.monotonic() - t0 >= 0.3
    with project_lock(path, timeout_s=0):
        pass  # free again once released


def test_lock_of_a_killed_process_is_free(tmp_path):
    path = tmp_path / ".mlpipe.lock"
    code = (
        "import sys, time; from pathlib import Path; from mlpipe.runtime.lock import project_lock\n"
        "with project_lock(Path(sys.argv[1]), 5):\n    print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(LockBusy):
        with project_lock(path, timeout_s=0.2, poll_s=0.05):
            pass
    proc.kill()
    proc.wait(timeout=10)
    with project_lock(path, timeout_s=2, poll_s=0.05):
        pass
