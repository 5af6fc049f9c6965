"""Requests take turns on the event loop: one per iteration, in arrival order, a cancelled waiter skipped."""

from __future__ import annotations

import asyncio

from mlpipe.serving.turns import TakeTurns, Turns


def test_one_turn_per_loop_iteration_in_arrival_order_and_io_polled_between():
    async def scenario():
        turns, started, ticks = Turns(), [], []
        loop = asyncio.get_running_loop()

        async def request(k: int) -> None:
            await turns.take()
            started.append((k, len(ticks)))

        def tick() -> None:  # a callback per iteration: what the loop runs between polls
            ticks.append(loop.time())
            if len(ticks) < 40:
                loop.call_soon(tick)

        loop.call_soon(tick)
        await asyncio.gather(*(request(k) for k in range(10)))
        return started

    started = asyncio.run(scenario())
    assert [k for k, _ in started] == list(range(10))
    iterations = [i for _, i in started]
    assert len(set(iterations)) == 10, f"two requests started in one iteration: {iterations}"


def test_a_cancelled_waiter_gives_its_turn_on():
    async def scenario():
        turns, started = Turns(), []

        async def request(k: int) -> None:
            await turns.take()
            started.append(k)

        tasks = [asyncio.create_task(request(k)) for k in range(4)]
        await asyncio.sleep(0)  # all four waiting or started
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)
        return started, turns

    started, turns = asyncio.run(scenario())
    assert started == [0, 2, 3]
    assert not turns._waiting


def test_only_the_named_paths_wait_for_a_turn():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["path"])

    async def scenario():
        guarded = TakeTurns(app, frozenset({"/predict"}))
        await guarded({"type": "http", "path": "/health"}, None, None)
        await guarded({"type": "http", "path": "/predict"}, None, None)
        return guarded.turns

    turns = asyncio.run(scenario())
    assert seen == ["/health", "/predict"] and not turns._waiting
