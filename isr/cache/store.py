"""Records of one build: the in-process LRU in front of a backend."""

from __future__ import annotations

import asyncio
import time

from isr.cache.backend import Backend
from isr.cache.memory import MemoryCache
from isr.cache.record import Record


class RecordStore:
    def __init__(self, backend: Backend, build_id: str, memory: MemoryCache) -> None:
        self.backend = backend
        self.build_id = build_id
        self.memory = memory

    async def load(self, path: str) -> Record | None:
        record = self.memory.get(path)
        if record is not None:
            return record
        raw = await self.backend.get(self.build_id, path)
        if raw is None:
            return None
        record = Record.from_bytes(raw)
        self.memory.put(record)
        return self.memory.get(path)

    async def save(self, record: Record, raw: bytes) -> None:
        """Store a record; `raw` is its to_bytes(), made once where it was generated."""
        await self.backend.put(self.build_id, record.path, raw, record.tags)
        self.memory.put(record)

    async def acquire_lease(self, path: str, ttl: float) -> str | None:
        return await self.backend.acquire_lease(self.build_id, path, ttl)

    async def release_lease(self, path: str, token: str) -> None:
        await self.backend.release_lease(self.build_id, path, token)

    async def wait_for_record(self, path: str, after: float, timeout: float) -> Record | None:
        """Poll the backend until another process stores a generation newer than `after`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw = await self.backend.get(self.build_id, path)
            if raw is not None:
                record = Record.from_bytes(raw)
                if record.generated_at > after:
                    self.memory.put(record)
                    return record
            await asyncio.sleep(0.05)
        return None
