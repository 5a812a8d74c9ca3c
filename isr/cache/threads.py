"""Threads that run blocking calls for the event loop, lighter than `run_in_executor`.

`run_in_executor` wraps each call in a concurrent.futures.Future with its Condition, and
chains it to an asyncio future through callbacks on both sides: for a HIT read from the
disk cache, that machinery cost the event loop more than the SQLite query cost the
reader thread. Here a call is one tuple on a SimpleQueue and one `call_soon_threadsafe`
back to the loop that asked.
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

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


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
            self._calls.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            loop, future, function, args = call
            if future.cancelled():  # its caller went away before it started (a dropped client)
                continue
            try:
                outcome, failed = function(*args), False
            except BaseException as exc:  # handed to the caller, whatever it is
                outcome, failed = exc, True
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, future, outcome, failed)


def _settle(future: asyncio.Future[Any], outcome: Any, failed: bool) -> None:
    if future.cancelled():
        return
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
