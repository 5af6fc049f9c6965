"""The task runner of the retrain flow: Prefect's thread pool, except that a flow stopped by a signal
(Ctrl-C, SIGTERM: a BaseException in its main thread) does not wait for its submitted tasks to end on
their own. A drift report or an infra probe takes minutes on large data, and Prefect's pool waits for
them before it marks the flow run Crashed: the processes they started are stopped instead and Interrupted
is raised in their threads, so the command ends within seconds with nothing left running."""

from __future__ import annotations

import sys
import threading
from concurrent.futures.thread import _WorkItem

from prefect.task_runners import ThreadPoolTaskRunner

from mlpipe.runtime.guard import interrupt_threads, stop_own_children

CHILD_GRACE_S = 3.0  # what a stopped git, DVC or probe process gets before SIGKILL


def stopped_by(exc_type: type[BaseException] | None) -> bool:
    """True for what unwinds a flow stopped from outside: KeyboardInterrupt (mlpipe's Stopped), Prefect's
    TerminationSignal, SystemExit; not an error of the flow's own (an Exception) nor a generator closing."""
    return exc_type is not None and not issubclass(exc_type, Exception | GeneratorExit)


class StoppingTaskRunner(ThreadPoolTaskRunner):
    """ThreadPoolTaskRunner whose exit on a stop first ends what its worker threads run (see the module)."""

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        executor = self._executor
        if stopped_by(exc_type) and executor is not None:
            stop_own_children(CHILD_GRACE_S)
            threads = list(executor._threads)
            executor.shutdown(wait=False, cancel_futures=True)  # no new call starts; idle workers leave
            for _ in threads:  # a wake-up each: a worker interrupted between two calls passes none on
                executor._work_queue.put(None)
            interrupt_threads(t.ident for t in threads if running_call(t))
        super().__exit__(exc_type, exc_value, traceback)


def running_call(thread: threading.Thread) -> bool:
    """True while `thread`, a worker of a ThreadPoolExecutor, runs a submitted call (not waiting for one:
    an exception raised there would end the worker, not the call)."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code is _WorkItem.run.__code__:
            return True
        frame = frame.f_back
    return False
