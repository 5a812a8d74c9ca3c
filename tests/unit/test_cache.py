"""The disk backend, the memory LRU and the store in front of them."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from isr.cache.disk import DiskBackend
from isr.cache.memory import MemoryCache
from isr.cache.record import HTML_TYPE, JSON_TYPE, Record, make_variant
from isr.cache.store import RecordStore


def record(path: str, generation: str, body: bytes = b"x", tags: tuple[str, ...] = ()) -> Record:
    return Record(
        path=path, page=path, build_id="b1", generation=generation, generated_at=1.0, revalidate=60,
        tags=tags, outcome="page", html=make_variant(200, HTML_TYPE, body), data=make_variant(200, JSON_TYPE, body),
    )


async def test_put_replaces_record_and_tag_index(tmp_path: Path) -> None:
    disk = DiskBackend(tmp_path)
    await disk.put("b1", "/a", b"one", ("blog", "x"))
    await disk.put("b1", "/a", b"two", ("blog",))
    assert await disk.get("b1", "/a") == (b"two", None)
    assert await disk.paths_with_tag("b1", "blog") == ["/a"]
    assert await disk.paths_with_tag("b1", "x") == []
    await disk.close()


async def test_lease_is_exclusive_until_released_or_expired(tmp_path: Path) -> None:
    disk = DiskBackend(tmp_path)
    token = await disk.acquire_lease("b1", "/a", ttl=30)
    assert token and await disk.acquire_lease("b1", "/a", ttl=30) is None
    await disk.release_lease("b1", "/a", "not-mine")
    assert await disk.acquire_lease("b1", "/a", ttl=30) is None
    await disk.release_lease("b1", "/a", token)
    assert await disk.acquire_lease("b1", "/a", ttl=0.05)
    await asyncio.sleep(0.1)
    assert await disk.acquire_lease("b1", "/a", ttl=30)
    await disk.close()


def _take_lease(directory: str, results: multiprocessing.Queue[bool], everyone: Any = None) -> None:
    token = asyncio.run(DiskBackend(directory).acquire_lease("b1", "/p", ttl=30))
    results.put(token is not None)
    if everyone is not None:
        everyone.wait(30)  # the holder stays alive until all have tried: a dead one's lease is free


def test_lease_is_exclusive_across_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[bool] = context.Queue()
    everyone = context.Barrier(4)
    workers = [context.Process(target=_take_lease, args=(str(tmp_path), results, everyone)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert sorted(results.get(timeout=5) for _ in workers) == [False, False, False, True]


async def test_drop_other_builds_keeps_the_current_one(tmp_path: Path) -> None:
    disk = DiskBackend(tmp_path)
    await disk.put("old", "/a", b"1", ("t",))
    await disk.put("new", "/a", b"2", ())
    assert await disk.drop_other_builds("new") >= 2
    assert await disk.get("old", "/a") is None and await disk.get("new", "/a") == (b"2", None)
    await disk.close()


async def test_store_reads_through_and_keeps_newest(tmp_path: Path) -> None:
    store = RecordStore(DiskBackend(tmp_path), "b1", MemoryCache(10**6))
    first = record("/a", "g1")
    await store.save(first, first.to_bytes())
    fresh = RecordStore(DiskBackend(tmp_path), "b1", MemoryCache(10**6))
    loaded = await fresh.load("/a")
    assert loaded is not None and loaded.generation == "g1"
    fresh.memory.put(record("/a", "g0"))  # an older generation never replaces a newer one
    assert fresh.memory.get("/a").generation == "g1"  # type: ignore[union-attr]


def test_memory_is_bounded_in_bytes_and_updates_aliases() -> None:
    memory = MemoryCache(max_bytes=2500)
    a = record("/a", "g1", b"a" * 500)
    memory.put(a)
    memory.alias("/a", a, is_json=False)
    newer = record("/a", "g2", b"b" * 500)
    memory.put(newer)
    assert memory.hot["/a"] == (newer, newer.html)
    memory.put(record("/b", "g1", b"c" * 500))
    memory.put(record("/c", "g1", b"d" * 500))
    assert memory.get("/a") is None and "/a" not in memory.hot  # evicted first, aliases too
    assert memory.bytes <= 2500


@pytest.mark.parametrize("size", [10, 100_000])
async def test_records_of_any_size_round_trip_through_disk(tmp_path: Path, size: int) -> None:
    disk = DiskBackend(tmp_path)
    rec = record("/big", "g1", b"z" * size)
    await disk.put("b1", "/big", rec.to_bytes(), ())
    stored = await disk.get("b1", "/big")
    assert stored is not None and Record.from_bytes(stored[0]).html.bodies["identity"] == b"z" * size
    await disk.close()


async def test_changes_list_writes_since_a_counter(tmp_path: Path) -> None:
    disk = DiskBackend(tmp_path)
    seq, _ = await disk.changes("b1", -1)
    await disk.put("b1", "/a", b"1", ())
    await disk.put("b1", "/b", b"2", ())
    now, paths = await disk.changes("b1", seq)
    assert now == seq + 2 and paths == ["/a", "/b"]
    assert await disk.changes("b1", now) == (now, [])
    await disk.close()


async def test_sync_picks_up_another_process_generation(tmp_path: Path) -> None:
    """A record written through another store (another process) replaces the memory copy."""
    reader = RecordStore(DiskBackend(tmp_path), "b1", MemoryCache(10**6))
    writer = RecordStore(DiskBackend(tmp_path), "b1", MemoryCache(10**6))
    first = record("/a", "g1")
    await writer.save(first, first.to_bytes())
    assert (await reader.load("/a")).generation == "g1"  # type: ignore[union-attr]
    await reader.sync()
    second = record("/a", "g2")
    await writer.save(second, second.to_bytes())
    await reader.sync()
    assert reader.memory.get("/a").generation == "g2"  # type: ignore[union-attr]


async def test_expire_marks_only_the_current_generation(tmp_path: Path) -> None:
    store = RecordStore(DiskBackend(tmp_path), "b1", MemoryCache(10**6))
    first = record("/a", "g1")
    await store.save(first, first.to_bytes())
    assert await store.expire("/a") and first.stale_at == 0
    other = RecordStore(DiskBackend(tmp_path), "b1", MemoryCache(10**6))
    assert (await other.load("/a")).stale_at == 0  # type: ignore[union-attr]
    second = record("/a", "g2")
    await store.save(second, second.to_bytes())
    fresh = RecordStore(DiskBackend(tmp_path), "b1", MemoryCache(10**6))
    assert (await fresh.load("/a")).stale_at == 61.0  # type: ignore[union-attr]
    assert not await store.expire("/missing")


async def test_a_lease_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    disk = DiskBackend(tmp_path)
    dead = multiprocessing.get_context("spawn").Process(target=_take_lease, args=(str(tmp_path), multiprocessing.get_context("spawn").Queue()))
    dead.start()
    dead.join(30)
    assert await disk.acquire_lease("b1", "/p", ttl=30) is not None  # its holder exited without releasing
    await disk.close()


def test_records_never_live_in_separate_files(tmp_path: Path) -> None:
    """A kill -9 between a file's deletion and the commit could otherwise lose a record."""
    disk = DiskBackend(tmp_path)
    asyncio.run(disk.put("b1", "/big", b"x" * 5_000_000, ()))
    assert [p for p in tmp_path.rglob("*.val")] == []
