"""A flow stopped by a signal ends within seconds: its task runner interrupts the calls its worker threads
run (a drift report in pure Python, a probe waiting on its process) instead of waiting for them."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from prefect.exceptions import TerminationSignal

from mlpipe.flows.runner import StoppingTaskRunner, running_call, stopped_by
from mlpipe.runtime.guard import Interrupted


@pytest.mark.parametrize(
    ("exc_type", "stopped"),
    [
        (KeyboardInterrupt, True),
        (TerminationSignal, True),
        (SystemExit, True),
        (ValueError, False),
        (GeneratorExit, False),
        (None, False),
    ],
)
def test_only_a_stop_from_outside_interrupts_the_workers(exc_type, stopped):
    assert stopped_by(exc_type) is stopped


def _busy(until: float) -> int:
    n = 0
    while time.monotonic() < until:  # pure Python, as Evidently's drift computation is
        n += 1
    return n


def _waits_on_a_process() -> int:
    return subprocess.run([sys.executable, "-c", "import time; time.sleep(60)"], check=False).returncode


def test_a_stopped_flow_does_not_wait_for_its_submitted_calls():
    runner = StoppingTaskRunner(max_workers=4)
    runner.__enter__()
    pool = runner._executor
    busy = pool.submit(_busy, time.monotonic() + 60)
    waiting = pool.submit(_waits_on_a_process)
    idle = pool.submit(lambda: None)  # done: its worker waits for the next call
    idle.result(timeout=10)
    time.sleep(0.5)  # the process has started
    threads = list(pool._threads)
    assert sum(running_call(t) for t in threads) == 2
    t0 = time.monotonic()
    runner.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert time.monotonic() - t0 < 10, "not the minute the calls would take"
    assert isinstance(busy.exception(timeout=1), Interrupted)
    assert waiting.done()  # its process was stopped (SIGTERM), so the call returned or was interrupted
    assert not any(t.is_alive() for t in threads), "every worker ended, the idle one too"


def test_a_flow_that_ends_normally_waits_for_its_calls_as_prefect_does():
    runner = StoppingTaskRunner(max_workers=2)
    runner.__enter__()
    call = runner._executor.submit(_busy, time.monotonic() + 0.5)
    runner.__exit__(None, None, None)
    assert call.result(timeout=0) > 0


def test_an_idle_worker_is_not_running_a_call():
    done = threading.Event()
    runner = StoppingTaskRunner(max_workers=1)
    runner.__enter__()
    runner._executor.submit(done.set).result(timeout=10)
    (thread,) = runner._executor._threads
    assert not running_call(thread)
    runner.__exit__(None, None, None)
