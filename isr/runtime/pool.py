"""Worker processes, pooled per bundle (functions with the same configuration).

Each worker has a private pipe: no shared queue or lock that a killed worker could
leave poisoned. An invocation that runs past maxDuration gets its worker SIGKILLed
(a pure-Python `while True` included), reaped off the event loop and replaced.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess

from isr.errors import FunctionError, FunctionFailed, FunctionTimeout, Throttled
from isr.runtime.invocation import Invocation, Result
from isr.runtime.limits import CpuGroups, peak_memory_mb
from isr.runtime.worker import Reply, error_of, main
from isr.site.config import FunctionConfig
from isr.site.site import Site

log = logging.getLogger("isr")

QUEUE_PER_WORKER = 8  # invocations that may wait per worker slot before FUNCTION_THROTTLED
START_TIMEOUT_S = 30.0  # a worker that is not ready by then has failed to start
STOP_TIMEOUT_S = 2.0
PIPE_BUFFER = 65_536  # bytes a pipe takes without blocking the writer (Linux default)


class WorkerDied(FunctionFailed):
    pass


class IdleWorkerDied(WorkerDied):
    """Found dead when handed an invocation: another worker can take it."""


class Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn

    async def call(self, invocation: Invocation | None, timeout: float) -> tuple[Reply, list[str]]:
        """Send an invocation (None: just wait for the start-up reply); its reply and printed lines.

        A failure (timeout, death) carries the lines printed before it and the peak memory.
        """
        if invocation is not None:
            await self.send(invocation)
        what = invocation.file if invocation else "worker"
        deadline = asyncio.get_running_loop().time() + timeout
        lines: list[str] = []
        try:
            while not isinstance(message := await self._receive(deadline, what, timeout), Reply):
                lines.append(message)
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

    async def _receive(self, deadline: float, what: str, timeout: float) -> Reply | str:
        """The next message: a printed line, or the reply."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(self.conn.fileno(), _resolve, readable)
        try:
            await asyncio.wait_for(readable, deadline - loop.time())
        except TimeoutError:
            raise FunctionTimeout(f"{what} ran past its maxDuration of {timeout:g} s") from None
        finally:
            loop.remove_reader(self.conn.fileno())
            # The loop made the pipe non-blocking; a message longer than one read must
            # be read whole, and the worker is writing it right now.
            os.set_blocking(self.conn.fileno(), True)
        try:
            message: Reply | str = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            raise WorkerDied(await self._death(what)) from None
        return message

    async def _death(self, what: str) -> str:
        await asyncio.to_thread(self.process.join, 1)
        code = self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            oom = " (out of memory?)" if code == -signal.SIGKILL else ""
            return f"{what}: its process was killed by {name}{oom}"
        return f"{what}: its process exited with code {code}"

    async def stop(self, kill: bool = False) -> None:
        """End the process and reap it, off the event loop."""
        if kill and self.process.is_alive():
            self.process.kill()
        self.conn.close()  # a waiting worker reads EOF and exits
        await asyncio.to_thread(self.process.join, STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Bundle:
    """The worker processes of one function configuration, started on demand."""

    def __init__(self, site: Site, config: FunctionConfig, context: ForkServerContext, cpu: CpuGroups, environ: dict[str, str]) -> None:
        self.site = site
        self.environ = environ
        self.config = config
        self.context = context
        self.cpu = cpu
        self.size = config.max_concurrency
        self._slots = asyncio.Semaphore(self.size)
        self._waiting = 0
        self._idle: list[Worker] = []
        self._all: set[Worker] = set()

    async def invoke(self, invocation: Invocation) -> Result:
        if self._slots.locked() and self._waiting >= QUEUE_PER_WORKER * self.size:
            raise Throttled(f"too many invocations queued for bundle {self.config.bundle}")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await self._invoke(invocation)
        finally:
            self._slots.release()

    async def _invoke(self, invocation: Invocation) -> Result:
        while True:
            worker = self._idle.pop() if self._idle else await self._spawn()
            try:
                reply, lines = await worker.call(invocation, invocation.limits.max_duration)
                break
            except IdleWorkerDied:
                await self._discard(worker, kill=True)  # and hand the invocation to another
            except BaseException:  # timeout, death, cancellation: this worker's state is unknown
                await self._discard(worker, kill=True)
                raise
        if reply.exiting:
            await self._discard(worker, kill=False)
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
            self.cpu.place(process.pid, self.config.memory)
        try:
            ready, _ = await worker.call(None, START_TIMEOUT_S)
        except FunctionError:
            await self._discard(worker, kill=True)
            raise
        if ready.error is not None:
            await self._discard(worker, kill=True)
            raise FunctionFailed(ready.error[1])
        return worker

    async def _discard(self, worker: Worker, kill: bool) -> None:
        self._all.discard(worker)
        pid = worker.process.pid
        await worker.stop(kill=kill)
        if pid is not None:
            self.cpu.remove(pid)

    async def close(self) -> None:
        self._idle.clear()
        await asyncio.gather(*(self._discard(w, kill=False) for w in list(self._all)))

    def prewarm(self) -> asyncio.Task[None]:
        """Start one worker ahead of the first request (in a slot: never one too many)."""
        async def warm() -> None:
            async with self._slots:
                try:
                    self._idle.append(await self._spawn())
                except FunctionError as exc:
                    log.warning("cannot start a worker for %s: %s", self.config.bundle, exc)

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
        self._bundles: dict[FunctionConfig, Bundle] = {}
        self._warming: list[asyncio.Task[None]] = []

    def bundle(self, config: FunctionConfig) -> Bundle:
        bundle = self._bundles.get(config)
        if bundle is None:
            bundle = self._bundles[config] = Bundle(self.site, config, self.context, self.cpu, self.environ)
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


