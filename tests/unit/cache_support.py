"""Records and stores for the cache and scheduler unit tests."""

from __future__ import annotations

from pathlib import Path

from isr.cache.disk import DiskBackend
from isr.cache.memory import MemoryCache
from isr.cache.record import HTML_TYPE, JSON_TYPE, Record, make_variant

DISK_BYTES = 2**30


def record(
    path: str, generation: str, body: bytes = b"x", tags: tuple[str, ...] = (), started_at: float = 1.0, revalidate: int = 60
) -> Record:
    return Record(
        path=path, page=path, build_id="b1", generation=generation, started_at=started_at, generated_at=started_at,
        revalidate=revalidate, tags=tags, outcome="page",
        html=make_variant(200, HTML_TYPE, body), data=make_variant(200, JSON_TYPE, body),
    )


def backend(folder: Path, size_limit: int = DISK_BYTES) -> DiskBackend:
    return DiskBackend(folder, size_limit)


def memory(max_bytes: int = 10**7) -> MemoryCache:
    return MemoryCache(max_bytes)
