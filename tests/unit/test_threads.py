"""The cache's threads: a call's result or exception comes back to the loop that asked."""

from __future__ import annotations

import asyncio
from functools import partial
import threading
import time

import pytest

from isr.cache.threads import Batches, Threads
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


async def test_batches_coalesce_the_keys_asked_while_a_fetch_runs() -> None:
    threads = Threads(1, "test")
    gate = threading.Event()
    fetched: list[list[int]] = []

    def fetch(keys: list[int]) -> dict[int, str]:
        gate.wait(5)
        fetched.append(keys)
        return {key: f"v{key}" for key in keys if key % 2 == 0}

    batches = Batches(partial(threads.run, fetch), limit=1, most=50)
    try:
        first = batches.get(0)  # starts a fetch at once
        rest = [batches.get(n) for n in range(1, 101)]  # wait for it, then go in batches of 50
        gate.set()
        assert await first == "v0"
        assert await asyncio.gather(*rest) == [f"v{n}" if n % 2 == 0 else None for n in range(1, 101)]
        assert fetched == [[0], list(range(1, 51)), list(range(51, 101))]
    finally:
        threads.shutdown()


async def test_a_failed_fetch_fails_its_batch_only_and_a_closed_one_fails_at_once() -> None:
    threads = Threads(1, "test")

    def fetch(keys: list[str]) -> dict[str, str]:
        if "bad" in keys:
            raise ValueError("boom")
        return {key: key for key in keys}

    batches = Batches(partial(threads.run, fetch), limit=1)
    with pytest.raises(ValueError, match="boom"):
        await batches.get("bad")
    assert await batches.get("good") == "good"
    threads.shutdown()
    with pytest.raises(CacheError, match="closed"):
        await batches.get("late")


def _stop() -> None:
    raise StopIteration


async def test_a_call_raising_stopiteration_fails_as_a_runtime_error_and_the_others_run() -> None:
    threads = Threads(1, "test")
    gate = threading.Event()
    try:
        blocked = threads.run(gate.wait, 5)
        bad, good = threads.run(_stop), threads.run(pow, 3, 2)
        gate.set()
        assert await blocked is True
        with pytest.raises(RuntimeError, match="StopIteration"):
            await asyncio.wait_for(bad, 5)
        assert await asyncio.wait_for(good, 5) == 9
    finally:
        threads.shutdown()


async def test_closing_fails_every_key_still_waiting() -> None:
    threads = Threads(1, "test")
    gate = threading.Event()

    def fetch(keys: list[int]) -> dict[int, int]:
        gate.wait(5)
        return {key: key for key in keys}

    def closed() -> bool:
        try:
            threads.run(int).cancel()  # a call cancelled before it starts never runs
        except CacheError:
            return True
        return False

    batches = Batches(partial(threads.run, fetch), limit=1, most=2)
    asked = [batches.get(n) for n in range(6)]  # 0 runs; 1-5 wait, two to a call
    closing = threading.Thread(target=threads.shutdown)
    closing.start()  # it waits for the running fetch
    deadline = time.monotonic() + 5
    while not closed() and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    gate.set()
    assert await asyncio.wait_for(asked[0], 5) == 0
    for future in asked[1:]:
        with pytest.raises(CacheError, match="closed"):
            await asyncio.wait_for(future, 5)
    closing.join(5)
