"""Prerendering for `isr build`: batched writes, and a failed write that stops the build."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from isr.cache.backend import Stored
from isr.engine.prerender import BATCH, prerender
from isr.errors import CacheError

from cache_support import record


class Engine:
    """Renders any path in a millisecond; its store's writes fail after `good_writes`."""

    def __init__(self, good_writes: int) -> None:
        self.written: list[list[Stored]] = []
        self.rendering = 0
        self.left = good_writes
        self.store = SimpleNamespace(save_all=self._save_all)
        self.hub = SimpleNamespace(flush=self._flush)

    async def invoke(self, route: Any, kind: str, payload: dict[str, Any]) -> bytes:
        self.rendering += 1
        try:
            await asyncio.sleep(0.001)
        finally:
            self.rendering -= 1
        return record(payload["path"], "g1").to_bytes()

    async def _save_all(self, batch: list[Stored]) -> None:
        if self.left == 0:
            raise CacheError("cache: database or disk is full")
        self.left -= 1
        self.written.append(batch)

    async def _flush(self) -> None:
        pass


ROUTE = SimpleNamespace(match=lambda segments: {"n": segments[-1]})


def jobs(n: int) -> list[tuple[Any, str]]:
    return [(ROUTE, f"/t/{i}") for i in range(n)]


async def test_every_path_is_written_in_batches() -> None:
    engine, done = Engine(good_writes=100), []
    await prerender(engine, jobs(BATCH * 2 + 5), 8, lambda route, path, outcome: done.append(path))  # type: ignore[arg-type]
    assert [len(batch) for batch in engine.written] == [BATCH, BATCH, 5]
    assert sorted(done) == sorted(path for _, path in jobs(BATCH * 2 + 5))


async def test_a_failed_write_is_raised_as_itself_and_stops_every_renderer() -> None:
    engine = Engine(good_writes=1)
    with pytest.raises(CacheError, match="disk is full"):
        await prerender(engine, jobs(BATCH * 10), 8, lambda route, path, outcome: None)  # type: ignore[arg-type]
    assert engine.rendering == 0  # no render goes on behind the failed build
    assert len(engine.written) == 1
