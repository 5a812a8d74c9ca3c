"""The SQLite disk backend: fenced writes, the tag index, eviction, the change log, leases, builds."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

import isr.cache.disk as disk_module
from isr.cache.backend import Change
from isr.cache.disk import DATABASE, OLDER_DATABASES, DiskBackend
from isr.cache.record import Record

from cache_support import opened, record, stored


# -- records ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 5_000_000])
async def test_records_of_any_size_round_trip(tmp_path: Path, size: int) -> None:
    body = os.urandom(size)
    original = record("/big", "g1", body, tags=("t",))
    async with opened(tmp_path) as disk:
        assert await disk.put("b1", [stored("/big", 1.0, ("t",), original.to_bytes())]) == [True]
        raw = await disk.get("b1", "/big")
    assert raw is not None
    copy = Record.from_bytes(raw)
    assert copy.html.bodies == original.html.bodies and copy.data.bodies == original.data.bodies
    assert copy.html.bodies["identity"] == body


async def test_values_never_live_in_separate_files(tmp_path: Path) -> None:
    """A kill -9 between a value file's write and the commit could otherwise lose a record."""
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/big", raw=b"x" * 5_000_000)])
        assert await disk.get("b1", "/big") == b"x" * 5_000_000
    assert {p.name for p in tmp_path.rglob("*")} <= {DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm"}


async def test_missing_paths_and_other_builds_read_as_none(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/a", raw=b"one")])
        assert await disk.get("b1", "/missing") is None
        assert await disk.get("b2", "/a") is None
        await disk.put("b2", [stored("/a", raw=b"two")])
        assert (await disk.get("b1", "/a"), await disk.get("b2", "/a")) == (b"one", b"two")


async def test_put_is_fenced_by_start_time(tmp_path: Path) -> None:
    """A generation that started earlier never replaces one that started later."""
    async with opened(tmp_path) as disk:
        assert await disk.put("b1", [stored("/a", 2.0, raw=b"newer")]) == [True]
        assert await disk.put("b1", [stored("/a", 1.0, raw=b"older")]) == [False]
        assert await disk.get("b1", "/a") == b"newer"
        assert await disk.put("b1", [stored("/a", 2.0, raw=b"equal")]) == [True]
        assert await disk.get("b1", "/a") == b"equal"
        batch = [stored("/a", 1.5, raw=b"x"), stored("/b", 1.0, raw=b"b"), stored("/a", 3.0, raw=b"latest")]
        assert await disk.put("b1", batch) == [False, True, True]
        assert await disk.get("b1", "/a") == b"latest"


async def test_a_refused_write_leaves_the_tag_rows_of_the_stored_generation(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/a", 2.0, ("kept",))])
        await disk.put("b1", [stored("/a", 1.0, ("other",))])
        assert await disk.mark_tag("b1", "kept", 10.0) == ["/a"]
        assert await disk.mark_tag("b1", "other", 10.0) == []


# -- the tag index ------------------------------------------------------------------


async def test_tag_rows_follow_the_record_tags(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/a", 1.0, ("x", "y")), stored("/b", 1.0, ("x",)), stored("/c", 1.0, ("y",))])
        await disk.put("b1", [stored("/a", 2.0, ("y", "z"))])  # the newer generation of /a dropped x
        assert await disk.mark_tag("b1", "x", 5.0) == ["/b"]
        assert await disk.mark_tag("b1", "y", 5.0) == ["/a", "/c"]
        assert await disk.mark_tag("b1", "z", 5.0) == ["/a"]
        assert await disk.mark_tag("b2", "y", 5.0) == []  # tags are per build
        assert await disk.tag_marks("b1") == {"x": 5.0, "y": 5.0, "z": 5.0}


async def test_mark_tag_lists_only_generations_started_before_the_mark(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/old", 1.0, ("t",)), stored("/new", 9.0, ("t",)), stored("/untagged", 1.0)])
        assert await disk.mark_tag("b1", "t", 5.0) == ["/old"]
        assert await disk.mark_tag("b1", "t", 10.0) == ["/new", "/old"]
        assert await disk.tag_marks("b1") == {"t": 10.0}


async def _fill(disk: DiskBackend, tag: str, start: int, stop: int, batch: int = 5_000) -> None:
    for first in range(start, stop, batch):
        paths = range(first, min(first + batch, stop))
        await disk.put("b1", [stored(f"/p/{n}", 1.0, (tag, f"own-{n}")) for n in paths])


async def test_mark_tag_of_50000_paths_is_one_quick_query(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await _fill(disk, "all", 0, 50_000)
        began = time.perf_counter()
        paths = await disk.mark_tag("b1", "all", 5.0)
        took = time.perf_counter() - began
    print(f"mark_tag of 50,000 paths: {took * 1000:.0f} ms")
    assert len(paths) == 50_000 and set(paths) == {f"/p/{n}" for n in range(50_000)}
    assert took < 2.0


async def _median_put_seconds(disk: DiskBackend, tag: str, start: int, count: int = 100) -> float:
    times = []
    for n in range(start, start + count):
        began = time.perf_counter()
        await disk.put("b1", [stored(f"/p/{n}", 1.0, (tag, f"own-{n}"))])
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def test_a_write_costs_the_tags_of_its_page_not_the_paths_of_its_tags(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/warm-up")])
        first = await _median_put_seconds(disk, "big", 1)
        await _fill(disk, "big", 101, 40_000)
        later = await _median_put_seconds(disk, "big", 40_000)
    print(f"put into a tag of 100 paths: {first * 1e6:.0f} µs, of 40,000 paths: {later * 1e6:.0f} µs")
    assert later < 10 * first  # O(paths of the tag) was 40x: a pickled set of 40,000 rewritten per write


# -- eviction -----------------------------------------------------------------------

LIMIT = 2 * 2**20


def _files_bytes(folder: Path) -> int:
    """What the cache takes on disk: the database and its write-ahead log."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.name in (DATABASE, f"{DATABASE}-wal"))


async def test_eviction_keeps_the_database_near_its_bound_least_recently_used_first(tmp_path: Path) -> None:
    kept = [f"/r/{n}" for n in range(10)]  # the first written, touched after every batch
    async with opened(tmp_path, LIMIT) as disk:
        token = await disk.acquire_lease("b1", "/leased", ttl=600)
        await disk.mark_tag("b1", "marked", 5.0)
        static = [f"/static/{n}" for n in range(20_000)]  # ~400 KB: a fifth of the bound
        await disk.put_static_paths("b1", "/static/[n]", static)
        peak_used = peak_files = 0
        for batch in range(100):  # 5,000 records of 2 KB: 10 MB through a 2 MB cache
            written = range(batch * 50, batch * 50 + 50)
            await disk.put("b1", [stored(f"/r/{n}", 1.0, ("all",), os.urandom(2000)) for n in written])
            await disk.touch("b1", kept)
            count, used = await disk.usage("b1")
            peak_used, peak_files = max(peak_used, used), max(peak_files, _files_bytes(tmp_path))
        print(f"2 MB bound: peak used {peak_used / LIMIT:.2f}, files {peak_files / LIMIT:.2f} of it; {count} left")
        assert peak_used <= disk_module.DATA_SHARE * LIMIT  # the rest of the bound is the write-ahead log's
        assert peak_files <= LIMIT
        assert 0 < count < 1_000
        present = {f"/r/{n}" for n in range(5_000) if await disk.get("b1", f"/r/{n}") is not None}
        assert len(present) == count
        assert set(kept) <= present  # touched: recently used
        assert not present & {f"/r/{n}" for n in range(10, 1_000)}  # untouched old ones went first
        assert {f"/r/{n}" for n in range(4_900, 5_000)} <= present  # the newest stay
        assert set(await disk.mark_tag("b1", "all", 10.0)) == present  # evicted records' tag rows went with them
        assert await disk.acquire_lease("b1", "/leased", ttl=600) is None  # the lease is still held
        await disk.release_lease("b1", "/leased", token or "")
        assert await disk.acquire_lease("b1", "/leased", ttl=600) is not None
        assert (await disk.tag_marks("b1"))["marked"] == 5.0
        assert await disk.get_static_paths("b1", "/static/[n]") == static


# -- the change log -----------------------------------------------------------------


async def test_changes_list_path_and_tag_writes_after_a_counter(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        seq, nothing = await disk.changes("b1", -1)
        assert nothing == []
        await disk.put("b1", [stored("/a", 1.0, generation="g-a"), stored("/b", 1.0, generation="g-b")])
        await disk.mark_tag("b1", "t", 7.5)
        now, changes = await disk.changes("b1", seq)
        assert now == seq + 3
        assert changes == [
            Change(seq + 1, "path", "/a", "g-a"),
            Change(seq + 2, "path", "/b", "g-b"),
            Change(seq + 3, "tag", "t", 7.5),
        ]
        assert await disk.changes("b1", now) == (now, [])
        assert await disk.changes("b1", seq + 2) == (now, changes[2:])
        await disk.put("b2", [stored("/a", 1.0)])  # another build's writes count, but are not listed
        assert await disk.changes("b1", now) == (now + 1, [])


async def test_changes_older_than_the_pruned_log_cannot_be_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disk_module, "CHANGES_KEPT_S", 0.5)
    monkeypatch.setattr(disk_module, "PRUNE_EVERY", 1)
    async with opened(tmp_path) as disk:
        start, _ = await disk.changes("b1", -1)
        await disk.put("b1", [stored("/old", 1.0)])
        after_old, _ = await disk.changes("b1", -1)
        written = time.time()
        while time.time() < written + 0.6:  # the /old row ages past CHANGES_KEPT_S
            await asyncio.sleep(0.05)
        await disk.put("b1", [stored("/new", 1.0, generation="g-new")])  # this write prunes the log
        now, changes = await disk.changes("b1", start)
        assert (now, changes) == (after_old + 1, None)  # /old was pruned: the caller must resync
        assert await disk.changes("b1", after_old) == (now, [Change(now, "path", "/new", "g-new")])


async def test_dropping_other_builds_does_not_make_a_follower_resync(tmp_path: Path) -> None:
    """A server of b2 in step with the log has nothing to resync when b1's rows go (its
    last seen counter may be one of b1's rows: the log counter must not go back)."""
    async with opened(tmp_path) as disk:
        await disk.put("b2", [stored("/a", 1.0)])
        await disk.put("b1", [stored("/x", 1.0)])  # an old server of b1 still regenerating
        seq, _ = await disk.changes("b2", -1)
        await disk.drop_builds(["b2"])  # b1 is no longer in use: `isr build` drops it
        assert await disk.changes("b2", seq) == (seq, [])


# -- leases -------------------------------------------------------------------------


async def test_a_lease_is_exclusive_and_released_only_by_its_holder(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        token = await disk.acquire_lease("b1", "/a", ttl=30)
        assert token is not None
        assert await disk.acquire_lease("b1", "/a", ttl=30) is None
        assert await disk.acquire_lease("b1", "/b", ttl=30) is not None  # per path
        assert await disk.acquire_lease("b2", "/a", ttl=30) is not None  # per build
        await disk.release_lease("b1", "/a", "not-mine")
        assert await disk.acquire_lease("b1", "/a", ttl=30) is None
        await disk.release_lease("b1", "/a", token)
        assert await disk.acquire_lease("b1", "/a", ttl=30) is not None


class Clock:
    """time.time() of the disk module, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


async def test_a_lease_expires_after_its_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(disk_module, "time", clock)
    async with opened(tmp_path) as disk:
        assert await disk.acquire_lease("b1", "/a", ttl=30) is not None
        clock.now += 29
        assert await disk.acquire_lease("b1", "/a", ttl=30) is None
        clock.now += 2
        assert await disk.acquire_lease("b1", "/a", ttl=30) is not None


async def test_only_the_holder_renews_a_lease_and_renewing_moves_its_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(disk_module, "time", clock)
    async with opened(tmp_path) as disk:
        token = await disk.acquire_lease("b1", "/a", ttl=10)
        assert token is not None
        assert await disk.renew_lease("b1", "/a", "not-mine", ttl=10) is False
        clock.now += 8
        assert await disk.renew_lease("b1", "/a", token, ttl=10) is True
        clock.now += 8  # 16 s after it was taken, 8 s after the renewal
        assert await disk.acquire_lease("b1", "/a", ttl=10) is None
        clock.now += 3
        taken = await disk.acquire_lease("b1", "/a", ttl=10)  # lapsed: someone else's now
        assert taken is not None
        assert await disk.renew_lease("b1", "/a", token, ttl=10) is False
        await disk.release_lease("b1", "/a", token)  # the old holder cannot give it back either
        assert await disk.acquire_lease("b1", "/a", ttl=10) is None
        assert await disk.renew_lease("b1", "/b", token, ttl=10) is False  # no lease at all


def _take_lease(directory: str, results: Any, everyone: Any = None) -> None:
    token = asyncio.run(DiskBackend(directory, 2**30).acquire_lease("b1", "/p", ttl=300))
    results.put(token is not None)
    if everyone is not None:
        everyone.wait(30)  # the holder stays alive until all have tried: a dead one's lease is free


async def test_the_lease_of_a_process_that_died_is_taken_over(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    holder = context.Process(target=_take_lease, args=(str(tmp_path), results))
    holder.start()
    await asyncio.to_thread(holder.join, 60)
    assert holder.exitcode == 0 and results.get(timeout=5) is True  # it held the lease and exited without releasing it
    async with opened(tmp_path) as disk:
        assert await disk.acquire_lease("b1", "/p", ttl=300) is not None  # long before its ttl


def test_a_lease_is_exclusive_across_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    everyone = context.Barrier(4)
    workers = [context.Process(target=_take_lease, args=(str(tmp_path), results, everyone)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert sorted(results.get(timeout=5) for _ in workers) == [False, False, False, True]


# -- builds, servers, usage ---------------------------------------------------------


async def _fill_build(disk: DiskBackend, build_id: str, paths: int) -> None:
    await disk.put(build_id, [stored(f"/{n}", 1.0, ("t",)) for n in range(paths)])
    await disk.mark_tag(build_id, "t", 5.0)
    await disk.acquire_lease(build_id, "/0", ttl=600)
    await disk.put_static_paths(build_id, "/[n]", ["/0"])


async def test_drop_builds_deletes_everything_other_builds_stored(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await _fill_build(disk, "old", 3)
        await _fill_build(disk, "older", 2)
        await _fill_build(disk, "new", 4)
        assert await disk.drop_builds(["new"]) == 5
        for gone in ("old", "older"):
            assert await disk.get(gone, "/0") is None
            assert await disk.tag_marks(gone) == {}
            assert await disk.get_static_paths(gone, "/[n]") is None
            assert await disk.acquire_lease(gone, "/0", ttl=600) is not None  # its lease went too
            assert await disk.mark_tag(gone, "t", 10.0) == []  # and its tag rows
            assert (await disk.usage(gone))[0] == 0
        assert await disk.get("new", "/0") is not None and (await disk.usage("new"))[0] == 4
        assert await disk.tag_marks("new") == {"t": 5.0}
        assert await disk.get_static_paths("new", "/[n]") == ["/0"]
        assert await disk.acquire_lease("new", "/0", ttl=600) is None
        assert await disk.drop_builds(["new"]) == 0
        assert await disk.drop_builds([]) == 4  # keep nothing


async def test_builds_in_use_are_the_ones_announced_lately(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with opened(tmp_path) as disk:
        assert await disk.builds_in_use() == set()
        await disk.announce("b1", "server-1")
        await disk.announce("b1", "server-2")
        await disk.announce("b2", "server-3")
        assert await disk.builds_in_use() == {"b1", "b2"}
        await disk.announce("b3", "server-3")  # a server restarted on another build
        assert await disk.builds_in_use() == {"b1", "b3"}
        monkeypatch.setattr(disk_module, "SERVER_SEEN_S", -60.0)  # every announcement is now too old
        assert await disk.builds_in_use() == set()


async def test_usage_counts_the_build_records_and_the_whole_cache_bytes(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        _, empty = await disk.usage("b1")
        await disk.put("b1", [stored(f"/{n}", raw=os.urandom(10_000)) for n in range(100)])
        await disk.put("b2", [stored("/x", raw=os.urandom(1_000_000))])
        count, used = await disk.usage("b1")
        assert count == 100 and (await disk.usage("b2"))[0] == 1
        assert 2_000_000 - 100_000 < used - empty < 2_000_000 + 200_000


async def test_a_read_renews_an_old_use_stamp_with_the_next_touch(tmp_path: Path) -> None:
    """Reads from disk count as uses (LRU), stamped in batches and at most every USE_STAMP_EVERY_S each."""
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/old"), stored("/new")])
        db = disk._connection()
        db.execute("UPDATE uses SET used = 0 WHERE path = '/old'")
        assert await disk.get("b1", "/old") is not None and await disk.get("b1", "/new") is not None
        await disk.touch("b1", [])
        used = dict(db.execute("SELECT path, used FROM uses").fetchall())
        assert used["/old"] > time.time() - 5  # renewed by its read
        before = used["/new"]
        await disk.get("b1", "/new")  # stamped just now: no write for this read
        await disk.touch("b1", [])
        assert dict(db.execute("SELECT path, used FROM uses").fetchall())["/new"] == before


async def test_a_touch_stamps_every_stored_path_of_its_batch_and_no_other(tmp_path: Path) -> None:
    """A batch larger than one statement's chunk: every stored path of it is stamped, in either
    build; a path not stored (evicted meanwhile), or of a name JSON must escape, gets no row."""
    paths = [f"/p/{n}" for n in range(disk_module.TOUCH_CHUNK + 100)] + ['/q/"quoted"\\ünï']
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored(path) for path in paths])
        await disk.put("b2", [stored("/other")])
        db = disk._connection()
        db.execute("UPDATE uses SET used = 0")
        await disk.touch("b1", [*paths, "/gone"])
        await disk.touch("b2", ["/other"])
        used = dict(db.execute("SELECT build || path, used FROM uses").fetchall())
    assert len(used) == len(paths) + 1  # no row for /gone
    assert min(used.values()) > time.time() - 5


async def test_an_older_isrs_cache_file_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An older isr's database (its server may still run): this version opens a file of its
    own, says once that the old one can go, and never touches it."""
    old = sqlite3.connect(tmp_path / OLDER_DATABASES[0])
    old.execute("CREATE TABLE records (build TEXT, path TEXT, generation TEXT, started REAL, tags TEXT, raw BLOB, used REAL)")
    old.execute("INSERT INTO records VALUES ('b1', '/a', 'g1', 1.0, '[]', x'00', 1.0)")
    old.commit()
    async with opened(tmp_path) as disk:
        assert await disk.get("b1", "/a") is None
        assert await disk.put("b1", [stored("/a")]) == [True]
        assert await disk.get("b1", "/a") == b"raw"
    assert "older isr's cache" in caplog.text and OLDER_DATABASES[0] in caplog.text
    assert old.execute("SELECT path, used FROM records").fetchall() == [("/a", 1.0)]  # as the older server left it
    old.close()
