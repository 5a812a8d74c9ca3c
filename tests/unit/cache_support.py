"""Records and stores for the cache and scheduler unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from isr.cache.backend import Stored
from isr.cache.disk import DiskBackend
from isr.cache.memory import MemoryCache
from isr.cache.record import HTML_TYPE, JSON_TYPE, Record, make_variant
from isr.cache.store import RecordStore

DISK_BYTES = 2**30


def record(
    path: str, generation: str, body: bytes = b"x", tags: tuple[str, ...] = (), started_at: float = 1.0,
    revalidate: int = 60, data: bytes | None = None,
) -> Record:
    """A page generation; its JSON variant holds `data` (by default the same bytes as the HTML)."""
    return Record(
        path=path, page=path, build_id="b1", generation=generation, started_at=started_at, generated_at=started_at,
        revalidate=revalidate, tags=tags, outcome="page",
        html=make_variant(200, HTML_TYPE, body), data=make_variant(200, JSON_TYPE, body if data is None else data),
    )


def page_record(n: int, size: int, generation: str = "g1", started_at: float = 1.0) -> Record:
    """A realistic page as a server holds it: compressible HTML of `size` bytes, its JSON
    at a third of that, two tags, decoded from its stored bytes as every record in a
    server's memory is (a Record built in place also holds its builders' spare buffers)."""
    html = page_html(n, size)
    data = orjson.dumps({"pageProps": {"n": n, "excerpt": html[: size // 3].decode()}})
    built = record(f"/blog/post-{n}", generation, html, ("blog", f"post-{n}"), started_at, data=data)
    return Record.from_bytes(built.to_bytes())


def page_html(n: int, size: int) -> bytes:
    """`size` bytes of HTML text unique to page `n`, compressible as real pages are."""
    line = f"<p>Post {n}: lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n".encode()
    return (line * (size // len(line) + 1))[:size]


def stored(
    path: str, started_at: float = 1.0, tags: tuple[str, ...] = (), raw: bytes = b"raw", generation: str | None = None
) -> Stored:
    """What a backend write takes; backends never look inside `raw`."""
    return Stored(path, generation or f"g{started_at}", started_at, tags, raw)


def backend(folder: Path, size_limit: int = DISK_BYTES) -> DiskBackend:
    return DiskBackend(folder, size_limit)


@asynccontextmanager
async def opened(folder: Path, size_limit: int = DISK_BYTES) -> AsyncIterator[DiskBackend]:
    """A disk backend closed (threads joined, connections closed) when the test is done."""
    disk = backend(folder, size_limit)
    try:
        yield disk
    finally:
        await disk.close()


def calls_of(target: Any, method: str) -> list[tuple[Any, ...]]:
    """Record the arguments of every call of an async method of `target` (which still runs)."""
    calls: list[tuple[Any, ...]] = []
    original = getattr(target, method)

    async def counted(*args: Any) -> Any:
        calls.append(args)
        return await original(*args)

    setattr(target, method, counted)
    return calls


def memory(max_bytes: int = 10**7) -> MemoryCache:
    return MemoryCache(max_bytes)


def store(disk: DiskBackend, build_id: str = "b1", max_bytes: int = 10**7) -> RecordStore:
    """A store over a backend: two stores over two backends of one folder are two processes."""
    return RecordStore(disk, build_id, memory(max_bytes))
