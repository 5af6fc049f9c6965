"""Requests take turns on the event loop: one request's step per loop iteration, so the loop polls its sockets
(a probe, a new connection, an answer to write) between two requests instead of after all of them.

asyncio runs every callback that is ready when an iteration starts before it polls again. A burst's admitted
requests all become ready in one iteration (their headers parsed in one poll), and each takes ~1 ms of the
loop for the framework's layers before it hands its work to a thread: 64 of them held a probe for 60-100 ms
(2 cores, the GIL shared with the model's thread). With `TakeTurns` outermost, each waits for its turn, and a
turn is given per iteration: the same work, with the loop's polls between. The probes themselves are answered
in the connection protocol (`serving.connections`), within a poll."""

from __future__ import annotations

import asyncio
from collections import deque


class Turns:
    """A queue of waiters released one per event loop iteration."""

    def __init__(self) -> None:
        self._waiting: deque[asyncio.Future] = deque()
        self._scheduled = False

    async def take(self) -> None:
        """Return on this request's turn (at once when nobody waits and no turn is being given)."""
        if not self._waiting and not self._scheduled:
            self._scheduled = True  # this request is the turn: the next one waits an iteration
            asyncio.get_running_loop().call_soon(self._give)
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        await turn

    def _give(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():  # a cancelled waiter (client gone) gives its turn on
                turn.set_result(None)
                asyncio.get_running_loop().call_soon(self._give)
                return
        self._scheduled = False


class TakeTurns:
    """Pure ASGI: an HTTP request for one of `paths` starts on its turn (`Turns`)."""

    def __init__(self, app, paths: frozenset[str]):
        self.app, self.paths, self.turns = app, paths, Turns()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] in self.paths:
            await self.turns.take()
        await self.app(scope, receive, send)
