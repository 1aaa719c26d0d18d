"""The event-loop portal: sync code runs coroutines on a loop in a thread, which close() stops."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.runtime.portal import Portal


async def _where(x: int) -> tuple[int, threading.Thread, asyncio.AbstractEventLoop]:
    await asyncio.sleep(0)
    return x * 2, threading.current_thread(), asyncio.get_running_loop()


async def _fail() -> None:
    raise KeyError("from the loop")


def test_runs_a_coroutine_from_sync_code_and_shuts_down_cleanly():
    before = set(threading.enumerate())
    with Portal() as portal:
        assert not portal.running  # started by the first call, not before
        doubled, thread, loop = portal.call(_where, 21)
        assert doubled == 42 and thread is not threading.current_thread()
        assert portal.call(_where, 1)[1:] == (thread, loop)  # one loop for every call
        assert portal.call(lambda a, b: a + b, 2, 3) == 5  # a plain function runs on the loop too
        with pytest.raises(KeyError, match="from the loop"):
            portal.call(_fail)
        assert portal.running
    assert not portal.running and not thread.is_alive() and loop.is_closed()
    assert set(threading.enumerate()) == before
    assert portal.call(_where, 2)[1] is not thread  # a call after close starts a new loop
    portal.close()


def test_calls_in_flight_finish_before_close_returns():
    started, finished = threading.Event(), []

    async def slow() -> None:
        started.set()
        await asyncio.sleep(0.2)
        finished.append(True)

    portal = Portal()
    caller = threading.Thread(target=portal.call, args=(slow,))
    caller.start()
    assert started.wait(5)
    portal.close()
    assert finished == [True]
    caller.join(5)


def test_a_loop_already_running_elsewhere_is_used_and_left_running():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        portal = Portal(loop=loop)
        doubled, ran_on, ran_in = portal.call(_where, 5)
        assert (doubled, ran_on, ran_in) == (10, thread, loop)
        assert portal.call(len, "abc") == 3
        portal.close()
        assert thread.is_alive() and not loop.is_closed()
        assert portal.call(_where, 1)[0] == 2
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
