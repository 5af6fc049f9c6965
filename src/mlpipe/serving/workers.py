"""Where the request path's blocking work runs: in threads of its own, never on the event loop.

The event loop accepts connections, reads bodies and answers the probes (/health, /ready, /metrics). Work
that holds it for milliseconds (parsing and judging a body, the model, the answer's JSON) or waits on a
database stalls all of that: 300 single-row /predict at once kept /health waiting 9 s, and a /feedback
behind a locked SQLite file 2.2 s. Here:

- `predict`: the model and the CPU around it, in `PREDICT_THREADS` thread(s); a request waiting for one
  still counts as in flight, so the shedding limit (`serving.guard`) is what a burst meets, not a queue;
- `store`: /feedback's database calls, each bounded by a deadline (`in_thread(..., timeout_s=)`), apart
  from the predictions so a locked database never holds the model's threads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

T = TypeVar("T")
# One: the model's thread and the event loop share the GIL; a second predict thread took the loop's share
# from 1/2 to 1/3 (probe p99 under a 300-request burst ~270 ms instead of ~125, measured on 2 cores) and
# added no throughput (the frame work around scikit-learn's trees holds the GIL).
PREDICT_THREADS = 1
# How long a thread holding the GIL keeps it when another asks (CPython's default: 5 ms). 1 ms: the event
# loop, which needs the GIL for each step of a probe, waits for it a fifth as long behind the model's
# thread (probe p50 under a burst 3.5 ms instead of ~8-30). Set by `mlpipe serve` for its process.
SWITCH_INTERVAL_S = 0.001
STORE_THREADS = 4


@dataclass(frozen=True)
class Workers:
    predict: ThreadPoolExecutor
    store: ThreadPoolExecutor

    def shutdown(self) -> None:
        self.predict.shutdown(wait=True)
        self.store.shutdown(wait=True)


def start_workers(predict_threads: int = PREDICT_THREADS, store_threads: int = STORE_THREADS) -> Workers:
    return Workers(
        ThreadPoolExecutor(predict_threads, thread_name_prefix="predict"),
        ThreadPoolExecutor(store_threads, thread_name_prefix="log-store"),
    )


async def in_thread(
    pool: ThreadPoolExecutor, fn: Callable[..., T], *args, timeout_s: float | None = None
) -> T:
    """`fn(*args)` on `pool`, awaited; asyncio.TimeoutError after `timeout_s` (the call itself runs on, and
    its own deadlines end it)."""
    future = asyncio.get_running_loop().run_in_executor(pool, partial(fn, *args))
    if timeout_s is None:
        return await future
    return await asyncio.wait_for(future, timeout_s)
