"""Records of one build: the in-process LRU in front of a backend."""

from __future__ import annotations

import asyncio
import logging

from isr.cache.backend import Backend
from isr.cache.memory import MemoryCache
from isr.cache.record import Record

log = logging.getLogger("isr")


class RecordStore:
    def __init__(self, backend: Backend, build_id: str, memory: MemoryCache) -> None:
        self.backend = backend
        self.build_id = build_id
        self.memory = memory
        self._seq: int | None = None  # the backend's change counter when last synced

    async def load(self, path: str) -> Record | None:
        record = self.memory.get(path)
        if record is not None:
            return record
        record = await self._read(path)
        if record is None:
            return None
        self.memory.put(record)
        return self.memory.get(path)

    async def reread(self, path: str) -> Record | None:
        """The backend's record of a path, which replaces the memory copy."""
        record = await self._read(path)
        if record is not None:
            self.memory.put(record, newer_only=False)
            record = self.memory.get(path)
        return record

    async def _read(self, path: str) -> Record | None:
        stored = await self.backend.get(self.build_id, path)
        if stored is None:
            return None
        raw, expired = stored
        record = Record.from_bytes(raw)
        if record.generation == expired:
            record.expire()
        return record

    async def expire(self, path: str) -> bool:
        """Mark a path's current generation stale, here and for every process; False if none."""
        record = await self.reread(path)  # the stored generation: memory may be 0.5 s behind
        if record is None:
            return False
        await self.backend.expire(self.build_id, path, record.generation)
        record.expire()
        return True

    async def save(self, record: Record, raw: bytes) -> None:
        """Store a record; `raw` is its to_bytes(), made once where it was generated."""
        await self.backend.put(self.build_id, record.path, raw, record.tags)
        self.memory.put(record)

    async def follow(self, interval: float) -> None:
        """Keep the memory copy in step with writes by other processes (runs until cancelled)."""
        while True:
            try:
                await self.sync()
            except Exception:  # a bad moment of the disk must not end the following for good
                log.exception("cannot read the cache's change log")
            await asyncio.sleep(interval)

    async def sync(self) -> None:
        """Reload what other processes wrote since the last call (the first call only counts)."""
        seq, paths = await self.backend.changes(self.build_id, -1 if self._seq is None else self._seq)
        if self._seq is not None:
            for path in self.memory.paths() if paths is None else paths:
                await self._reload(path)
        self._seq = seq

    async def _reload(self, path: str) -> None:
        """Bring a path this process holds in step with the backend (the truth)."""
        if self.memory.get(path) is not None and await self.reread(path) is None:
            self.memory.drop(path)

    async def acquire_lease(self, path: str, ttl: float) -> str | None:
        return await self.backend.acquire_lease(self.build_id, path, ttl)

    async def release_lease(self, path: str, token: str) -> None:
        await self.backend.release_lease(self.build_id, path, token)
