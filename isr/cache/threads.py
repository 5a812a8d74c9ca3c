"""Threads that run blocking calls for the event loop, lighter than `run_in_executor`.

`run_in_executor` wraps each call in a concurrent.futures.Future with its Condition, and
chains it to an asyncio future through callbacks on both sides: for a HIT read from the
disk cache, that machinery cost the event loop more than the SQLite query cost the
reader thread. Here a call is one tuple on a SimpleQueue, and a thread takes every call
queued meanwhile (up to BATCH) and hands all their results back to the loop at once.
Under load that is one wake-up of the loop and one GIL hand-over per batch instead of
per call: measured with 64 concurrent SQLite reads, 21 instead of 54 µs of CPU a read
and 40 times fewer context switches.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from isr.errors import CacheError

T = TypeVar("T")

BATCH = 32  # calls one thread runs before it hands their results back

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
_Outcome = tuple["asyncio.Future[Any]", Any, bool]  # the future, the result or exception, whether it failed


class Threads:
    """`count` threads taking calls in order from one queue."""

    def __init__(self, count: int, name: str) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._closed = False
        self._threads = [threading.Thread(target=self._serve, name=f"{name}_{n}", daemon=True) for n in range(count)]
        for thread in self._threads:
            thread.start()

    def run(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `function(*args)` on one of the threads; its result (or exception) as a future."""
        if self._closed:
            raise CacheError("the cache is closed")  # a late call would wait forever
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, function, args))
        return future

    def shutdown(self) -> None:
        """Finish the calls queued so far, then end the threads (blocking)."""
        self._closed = True
        for _ in self._threads:
            self._calls.put(None)  # one each: a thread ends on the first it takes
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            batch, more = self._more([call])
            outcomes: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            for loop, future, function, args in batch:
                if future.cancelled():  # its caller went away before it started (a dropped client)
                    continue
                try:
                    outcome: _Outcome = (future, function(*args), False)
                except BaseException as exc:  # handed to the caller, whatever it is
                    outcome = (future, exc, True)
                outcomes.setdefault(loop, []).append(outcome)
            for loop, settled in outcomes.items():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                    loop.call_soon_threadsafe(_settle, settled)
            if not more:
                return

    def _more(self, batch: list[_Call]) -> tuple[list[_Call], bool]:
        """The batch with the calls queued behind its first, and False if the thread is to end."""
        while len(batch) < BATCH:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                break
            if call is None:
                return batch, False
            batch.append(call)
        return batch, True


def _settle(outcomes: list[_Outcome]) -> None:
    for future, outcome, failed in outcomes:
        if future.cancelled():
            continue
        if failed:
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
