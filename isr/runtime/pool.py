"""Worker processes, pooled per bundle (functions with the same configuration).

Each worker has a private pipe: no shared queue or lock that a killed worker could
leave poisoned. An invocation that runs past maxDuration gets its worker SIGKILLed
(a pure-Python `while True` included), reaped off the event loop and replaced.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import multiprocessing
import os
import pickle
import signal
import struct
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path

from isr.errors import FunctionError, FunctionFailed, FunctionTimeout, Throttled
from isr.runtime.containment import Reaper, kill_group, kill_tree
from isr.runtime.invocation import Invocation, Result
from isr.runtime.lending import Lending
from isr.runtime.limits import CpuGroups, peak_memory_mb
from isr.runtime.worker import Reply, error_of, main
from isr.site.config import FunctionConfig
from isr.site.site import Site

log = logging.getLogger("isr")

QUEUE_PER_WORKER = 8  # invocations that may wait per worker slot before FUNCTION_THROTTLED
START_TIMEOUT_S = 30.0  # a worker that is not ready by then has failed to start
STOP_TIMEOUT_S = 2.0
PIPE_BUFFER = 65_536  # bytes a pipe takes without blocking the writer (Linux default)
LARGE_READ = 2**20  # most bytes read from a worker per wake-up
LARGE_MESSAGE = 2**20  # a message this large is unpickled off the event loop


class WorkerDied(FunctionFailed):
    pass


class IdleWorkerDied(WorkerDied):
    """Found dead when handed an invocation: another worker can take it."""


class Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self._buffer = bytearray()  # bytes read from the worker, not yet a whole message
        self.members: Path | None = None  # its cgroup's cgroup.procs, where it has one

    async def call(
        self, invocation: Invocation | None, timeout: float, lend: Callable[[bool], None] | None = None
    ) -> tuple[Reply, list[str]]:
        """Send an invocation (None: just wait for the start-up reply); its reply and printed lines.

        `lend` hears when the invocation starts and stops waiting on the server (see lending).
        A failure (timeout, death) carries the lines printed before it and the peak memory.
        """
        if invocation is not None:
            await self.send(invocation)
        what = invocation.file if invocation else "worker"
        deadline = asyncio.get_running_loop().time() + timeout
        lines: list[str] = []
        try:
            while not isinstance(message := await self._receive(deadline, what, timeout), Reply):
                if isinstance(message, str):
                    lines.append(message)
                elif lend is not None:
                    lend(message.lent)
        except FunctionError as error:
            error.logs, error.memory_mb = lines, peak_memory_mb(self.process.pid)
            raise
        return message, lines

    async def send(self, invocation: Invocation) -> None:
        """IdleWorkerDied if the process is gone (killed while idle): the invocation never started."""
        data = pickle.dumps(invocation)
        try:
            if len(data) > PIPE_BUFFER:  # a large request body: write it off the event loop
                await asyncio.to_thread(self.conn.send_bytes, data)
            else:
                self.conn.send_bytes(data)
        except OSError:
            raise IdleWorkerDied(f"{invocation.file}: its worker died while idle") from None

    async def _receive(self, deadline: float, what: str, timeout: float) -> Reply | Lending | str:
        """The next message: a printed line, or the reply.

        Read as it arrives, one read per wake-up, never with a blocking recv: a large
        reply, or a worker that stalls halfway through one, holds up only this invocation.
        """
        while (data := self._take()) is None:
            await self._readable(deadline, what, timeout)
            try:
                chunk = os.read(self.conn.fileno(), self._read_size())
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                raise WorkerDied(await self._death(what))
            self._buffer += chunk
        if len(data) > LARGE_MESSAGE:
            message: Reply | Lending | str = await asyncio.to_thread(pickle.loads, data)
        else:
            message = pickle.loads(data)
        return message

    async def _readable(self, deadline: float, what: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        fd = self.conn.fileno()
        ready: asyncio.Future[bool] = loop.create_future()
        loop.add_reader(fd, _resolve, ready, True)
        timer = loop.call_at(deadline, _resolve, ready, False)
        try:
            readable = await ready
        finally:
            timer.cancel()
            loop.remove_reader(fd)
        if not readable:
            raise FunctionTimeout(f"{what} ran past its maxDuration of {timeout:g} s")

    def _take(self) -> bytes | None:
        """One whole message off the buffer, in multiprocessing.Connection's framing."""
        size, start = self._frame()
        if size < 0 or len(self._buffer) < start + size:
            return None
        data = bytes(self._buffer[start : start + size])
        del self._buffer[: start + size]
        return data

    def _frame(self) -> tuple[int, int]:
        """(body size, header size) of the buffered message; size -1 while the header is incomplete."""
        buffer = self._buffer
        if len(buffer) < 4:
            return -1, 0
        (size,) = struct.unpack_from("!i", buffer)
        if size != -1:
            return size, 4
        if len(buffer) < 12:
            return -1, 0
        (size,) = struct.unpack_from("!Q", buffer, 4)  # a message of 2 GiB or more
        return size, 12

    def _read_size(self) -> int:
        """A pipe's worth, or more while a large message is coming (fewer wake-ups)."""
        size, start = self._frame()
        return max(PIPE_BUFFER, min(start + size - len(self._buffer), LARGE_READ))

    async def _death(self, what: str) -> str:
        await asyncio.to_thread(self.process.join, 1)
        code = self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            oom = " (out of memory?)" if code == -signal.SIGKILL else ""
            return f"{what}: its process was killed by {name}{oom}"
        return f"{what}: its process exited with code {code}"

    async def stop(self) -> None:
        """End the process and everything the function started, and reap it, off the event loop.

        A worker has nothing to finish when it is stopped (idle, stuck or failed), so
        it is killed, not asked: a graceful exit would orphan what its functions started.
        """
        pid = self.process.pid
        if pid is not None:
            if self.process.is_alive():
                await asyncio.to_thread(kill_tree, pid, self.members)
            else:  # its pid may be someone else's now; its group and cgroup are still its own
                await asyncio.to_thread(kill_group, pid, self.members)
        if self.process.is_alive():  # killed before it led its own group
            self.process.kill()
        self.conn.close()
        await asyncio.to_thread(self.process.join, STOP_TIMEOUT_S)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


class Slots:
    """A bundle's capacity: at most `size` invocations run at once, first come first served.

    Unlike a semaphore, a slot can be lent (released) by an invocation that waits on
    the server, and taken back over the size when that wait ends (see lending).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def full(self) -> bool:
        return self.busy >= self.size

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def acquire(self) -> None:
        if self.busy < self.size and not self._queue:
            self.busy += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as it was cancelled: pass it on
            else:
                self._queue.remove(future)
            raise

    def take(self) -> None:
        """A slot without waiting, even over the size: for an invocation that lent its own."""
        self.busy += 1

    def release(self) -> None:
        self.busy -= 1
        while self._queue and self.busy < self.size:
            future = self._queue.popleft()
            if not future.done():
                self.busy += 1
                future.set_result(None)


class Bundle:
    """The worker processes of one function configuration, started on demand."""

    def __init__(
        self, site: Site, config: FunctionConfig, context: ForkServerContext, cpu: CpuGroups, reaper: Reaper, environ: dict[str, str]
    ) -> None:
        self.site = site
        self.reaper = reaper
        self.environ = environ
        self.config = config
        self.context = context
        self.cpu = cpu
        self.size = config.max_concurrency
        self._slots = Slots(self.size)
        self._idle: list[Worker] = []
        self._all: set[Worker] = set()

    async def invoke(self, invocation: Invocation) -> Result:
        if self._slots.full and self._slots.waiting >= QUEUE_PER_WORKER * self.size:
            raise Throttled(f"too many invocations queued for bundle {self.config.bundle}")
        await self._slots.acquire()
        holding = True

        def lend(lent: bool) -> None:
            """The invocation waits on the server (its slot is free), or runs again (over the size)."""
            nonlocal holding
            if lent and holding:
                holding = False
                self._slots.release()
            elif not lent and not holding:
                holding = True
                self._slots.take()

        try:
            return await self._invoke(invocation, lend)
        finally:
            if holding:
                self._slots.release()

    async def _invoke(self, invocation: Invocation, lend: Callable[[bool], None]) -> Result:
        while True:
            worker = self._idle.pop() if self._idle else await self._spawn()
            try:
                reply, lines = await worker.call(invocation, invocation.limits.max_duration, lend)
                break
            except IdleWorkerDied:
                await self._discard(worker)  # and hand the invocation to another
            except BaseException:  # timeout, death, cancellation: this worker's state is unknown
                await self._discard(worker)
                raise
        if reply.exiting:
            await self._discard(worker)
        else:
            self._idle.append(worker)
        error = error_of(reply)
        if error is not None:
            error.logs, error.memory_mb = lines, reply.memory_mb
            raise error
        return Result(reply.value, lines, reply.duration_ms, reply.memory_mb)

    async def _spawn(self) -> Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(
            target=main, args=(str(self.site.root), str(self.site.code), self.site.build_id, child, self.config.memory, {**os.environ, **self.environ}), daemon=True,
            name=f"isr-worker-{self.config.bundle}",
        )
        await asyncio.to_thread(process.start)
        child.close()
        worker = Worker(process, parent)
        self._all.add(worker)
        if process.pid is not None:
            worker.members = self.cpu.place(process.pid, self.config.memory)
            self.reaper.watch(process.pid, worker.members)
        try:
            ready, _ = await worker.call(None, START_TIMEOUT_S)
        except FunctionError:
            await self._discard(worker)
            raise
        if ready.error is not None:
            await self._discard(worker)
            raise FunctionFailed(ready.error[1])
        return worker

    async def _discard(self, worker: Worker) -> None:
        self._all.discard(worker)
        pid = worker.process.pid
        await worker.stop()
        if pid is not None:
            self.reaper.forget(pid)
            self.cpu.remove(pid)

    async def close(self) -> None:
        self._idle.clear()
        await asyncio.gather(*(self._discard(w) for w in list(self._all)))

    def prewarm(self) -> asyncio.Task[None]:
        """Start one worker ahead of the first request (in a slot: never one too many)."""
        async def warm() -> None:
            await self._slots.acquire()
            try:
                self._idle.append(await self._spawn())
            except FunctionError as exc:
                log.warning("cannot start a worker for %s: %s", self.config.bundle, exc)
            finally:
                self._slots.release()

        return asyncio.create_task(warm())


class WorkerInvoker:
    """The Invoker of the server: one Bundle per function configuration."""

    def __init__(self, site: Site, environ: dict[str, str] | None = None) -> None:
        """`environ`: variables for functions on top of the server's own (ISR_URL, …)."""
        self.site = site
        self.environ = environ or {}
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["isr.runtime.preload"])
        forkserver.ensure_running()  # from this (the main) thread: see isr.runtime.preload
        self.cpu = CpuGroups()
        self.reaper = Reaper()
        self._bundles: dict[FunctionConfig, Bundle] = {}
        self._warming: list[asyncio.Task[None]] = []

    def bundle(self, config: FunctionConfig) -> Bundle:
        bundle = self._bundles.get(config)
        if bundle is None:
            bundle = self._bundles[config] = Bundle(self.site, config, self.context, self.cpu, self.reaper, self.environ)
        return bundle

    def prewarm(self) -> None:
        configs = {route.function for route in self.site.routes.routes}
        self._warming = [self.bundle(config).prewarm() for config in configs]

    async def invoke(self, invocation: Invocation) -> Result:
        return await self.bundle(invocation.limits).invoke(invocation)

    async def close(self) -> None:
        for task in self._warming:
            task.cancel()
        await asyncio.gather(*(b.close() for b in self._bundles.values()))
        self.cpu.close()
        await asyncio.to_thread(self.reaper.close)


