"""Threads that run blocking calls for the event loop, lighter than `run_in_executor`.

`run_in_executor` wraps each call in a concurrent.futures.Future with its Condition, and
chains it to an asyncio future through callbacks on both sides: for a HIT read from the
disk cache, that machinery cost the event loop more than the SQLite query cost the
reader thread. Here a call is one tuple on a SimpleQueue and one `call_soon_threadsafe`
back to the loop that asked. `Batches` groups single-key lookups many to a call (the disk
cache's record reads, which its read process answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any, Generic, TypeVar

from isr.errors import CacheError

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

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
            self._calls.put(None)  # one each
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
                outcome, failed = _storable(exc), True
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, future, outcome, failed)


class RunningLoop:
    """`asyncio.get_running_loop()` without the getpid() system call Python 3.11 makes on
    every call (on a page read from disk, 1-3 % more HITs a second on these VMs): the loop
    found on the first call, for as long as it runs. For an object that lives on one loop."""

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        return loop


class Batches(Generic[K, V]):
    """Lookups of single keys, done many keys to a call: while `limit` calls of `fetch` run,
    the keys asked meanwhile wait and go into the next call together (at most `most`).

    For the disk cache's record reads: one SQLite query for 32 records costs about half
    the CPU of 32 queries (10.6 against 23.6 µs a record), and the batch takes one trip to
    the read process and back instead of one a record.
    """

    def __init__(self, fetch: Callable[[list[K]], asyncio.Future[dict[K, V]]], limit: int, most: int = 64) -> None:
        self._fetch = fetch
        self._limit = limit
        self._most = most
        self._waiting: list[tuple[K, asyncio.Future[V | None]]] = []
        self._running = 0
        self._loop = RunningLoop()

    def get(self, key: K) -> asyncio.Future[V | None]:
        """The value `fetch` finds for the key (None if it finds none), as a future."""
        future: asyncio.Future[V | None] = self._loop().create_future()
        self._waiting.append((key, future))
        if self._running < self._limit:
            self._start()
        return future

    def _start(self) -> None:
        batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
        try:
            call = self._fetch([key for key, _ in batch])
        except CacheError as exc:  # closed: so are the reads queued behind
            _fail(batch + self._waiting, exc)
            self._waiting = []
            return
        self._running += 1
        call.add_done_callback(partial(self._done, batch))

    def _done(self, batch: list[tuple[K, asyncio.Future[V | None]]], call: asyncio.Future[dict[K, V]]) -> None:
        self._running -= 1
        if self._waiting:
            self._start()
        if (exc := call.exception()) is not None:
            _fail(batch, exc)
            return
        found = call.result()
        for key, future in batch:
            if not future.done():
                future.set_result(found.get(key))


def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


def _storable(exc: BaseException) -> BaseException:
    """The exception as a future can hold it: asyncio refuses StopIteration (a coroutine
    would swallow it), and the caller would wait for ever."""
    if not isinstance(exc, StopIteration):
        return exc
    error = RuntimeError("a cache call raised StopIteration")
    error.__cause__ = exc
    return error


def _settle(future: asyncio.Future[Any], outcome: Any, failed: bool) -> None:
    if future.done():  # cancelled meanwhile
        return
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
