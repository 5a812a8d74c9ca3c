"""Prerendering for `isr build`: every static path rendered anew and written in batches.

A build renders each path once and no request waits for it, so it skips what serving
needs: no lease (writes are fenced, so a server regenerating the same path at the same
time keeps whichever generation started later), no in-memory copy, no decoding of the
record beyond its header, and one write transaction per batch instead of per page. A
fixed number of tasks pull paths from one iterator, so memory stays flat at 100,000 pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from isr.cache.backend import Stored
from isr.cache.record import Record
from isr.engine.engine import Engine
from isr.errors import FunctionError
from isr.site.paths import segments_of
from isr.site.routes import Route

BATCH = 64  # records per write transaction
LOG_FLUSH_S = 0.5


@dataclass(frozen=True)
class Rendered:
    """What a build reports of one prerendered path."""

    route: Route
    path: str
    status: int
    size: int  # bytes of the HTML
    seconds: float


Done = Callable[[Route, str, Rendered | FunctionError], None]


async def prerender(engine: Engine, jobs: Iterable[tuple[Route, str]], parallel: int, done: Done) -> None:
    """Render every (route, path), `parallel` at a time, calling `done` for each outcome."""
    pending: list[Stored] = []
    todo = iter(jobs)
    flushing = asyncio.create_task(_flush_logs(engine))
    try:
        try:
            async with asyncio.TaskGroup() as renderers:  # a failed write stops the others too
                for _ in range(parallel):
                    renderers.create_task(_render_all(engine, todo, pending, done))
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None  # the first failure, as one error for the CLI
        await _write(engine, pending)
    finally:
        flushing.cancel()
        await asyncio.gather(flushing, return_exceptions=True)


async def _render_all(engine: Engine, todo: Iterator[tuple[Route, str]], pending: list[Stored], done: Done) -> None:
    for route, path in todo:
        loop = asyncio.get_running_loop()
        started = loop.time()
        params = route.match(segments_of(path))
        assert params is not None  # static paths are checked against their route when collected
        try:
            raw = await engine.invoke(route, "render", {"path": path, "params": params})
        except FunctionError as exc:
            done(route, path, exc)
            continue
        header = Record.header_of(raw)
        pending.append(Stored(path, header["generation"], header["started_at"], tuple(header["tags"]), raw))
        if len(pending) >= BATCH:
            batch = pending[:]
            pending.clear()
            await _write(engine, batch)
        html = header["html"]
        done(route, path, Rendered(route, path, html["status"], html["sizes"]["identity"], loop.time() - started))


async def _write(engine: Engine, batch: list[Stored]) -> None:
    if batch:
        await engine.store.save_all(batch)


async def _flush_logs(engine: Engine) -> None:
    """Invocation records reach the log store during a long build, not all at its end."""
    while True:
        await asyncio.sleep(LOG_FLUSH_S)
        await engine.hub.flush()
