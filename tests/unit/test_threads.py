"""The cache's threads: a call's result or exception comes back to the loop that asked."""

from __future__ import annotations

import asyncio
import threading

import pytest

from isr.cache.threads import Threads
from isr.errors import CacheError


def _boom() -> None:
    raise ValueError("boom")


async def test_results_and_exceptions_come_back_and_calls_run_off_the_loop() -> None:
    threads = Threads(2, "test")
    try:
        here = threading.get_ident()
        assert await threads.run(threading.get_ident) != here
        assert await asyncio.gather(*(threads.run(pow, n, 2) for n in range(200))) == [n * n for n in range(200)]
        with pytest.raises(ValueError, match="boom"):
            await threads.run(_boom)
    finally:
        threads.shutdown()


async def test_a_cancelled_call_is_ignored_and_shutdown_finishes_the_queued_calls() -> None:
    threads = Threads(1, "test")
    gate = threading.Event()
    ran: list[int] = []
    blocked = threads.run(gate.wait, 5)
    cancelled = threads.run(ran.append, 1)
    cancelled.cancel()
    queued = threads.run(ran.append, 2)
    gate.set()
    assert await blocked is True
    assert await queued is None
    threads.shutdown()
    assert ran == [2]  # the call cancelled before it started never ran
    with pytest.raises(CacheError, match="closed"):
        threads.run(ran.append, 3)  # after shutdown: an error, not a wait forever
