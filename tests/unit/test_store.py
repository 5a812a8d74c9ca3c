"""The record store: read-through once per path, other processes' writes by the change log,
tag marks that lose no revalidation, fenced saves; and the revalidate report built on it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from isr.cache.memory import ADMIT_MARGIN, MemoryCache
from isr.cache.record import Record
from isr.cache.store import RecordStore, as_stored
from isr.constants import USE_STAMP_EVERY_S
from isr.engine.revalidation import revalidate
from isr.errors import CacheUnavailable, FunctionFailed

from cache_support import backend, calls_of, opened, page_record, record, store, stored


async def _save(
    into: RecordStore, path: str, generation: str, started_at: float = 1.0, tags: tuple[str, ...] = ()
) -> Record:
    made = record(path, generation, tags=tags, started_at=started_at)
    return await into.save(made, made.to_bytes())


async def test_concurrent_loads_of_a_path_read_the_backend_once(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await _save(store(disk), "/a", "g1")
        reader = store(backend(tmp_path))
        gets = calls_of(reader.backend, "get")
        loaded = await asyncio.gather(*(reader.load("/a") for _ in range(50)))
        assert gets == [("b1", "/a")]
        assert loaded[0] is not None and loaded[0].generation == "g1" and all(r is loaded[0] for r in loaded)
        assert await reader.load("/a") is loaded[0] and len(gets) == 1  # held in memory now
        assert await asyncio.gather(*(reader.load("/missing") for _ in range(10))) == [None] * 10
        assert gets.count(("b1", "/missing")) == 1
        await reader.backend.close()


async def test_the_others_still_get_the_record_when_the_first_asker_goes_away(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await _save(store(disk), "/a", "g1")
        reader = store(backend(tmp_path))
        first = asyncio.ensure_future(reader.load("/a"))
        await asyncio.sleep(0)  # the first asker's read is under way
        others = asyncio.gather(*(reader.load("/a") for _ in range(5)))
        await asyncio.sleep(0)
        first.cancel()  # a dropped client
        loaded = await asyncio.wait_for(others, 5)
        assert first.cancelled()
        assert all(r is not None and r.generation == "g1" for r in loaded)
        assert (await reader.load("/a")).generation == "g1"  # type: ignore[union-attr]
        await reader.backend.close()


async def test_sync_drops_a_copy_another_process_replaced_and_keeps_its_own_writes(tmp_path: Path) -> None:
    async with opened(tmp_path) as one, opened(tmp_path) as other:
        writer, reader = store(one), store(other)
        await _save(writer, "/a", "g1", 1.0)
        assert (await reader.load("/a")).generation == "g1"  # type: ignore[union-attr]
        await reader.sync()  # the first call only counts
        own = await _save(reader, "/own", "g1", 1.0)
        await _save(writer, "/a", "g2", 2.0)
        await reader.sync()
        assert reader.memory.peek("/a") is None  # the next request reads the newer generation
        assert reader.memory.peek("/own") is own
        assert (await reader.load("/a")).generation == "g2"  # type: ignore[union-attr]
        await writer.sync()
        await writer.sync()
        mine = writer.memory.peek("/a")
        assert mine is not None and mine.generation == "g2"  # its own write, kept


async def test_a_newer_generation_written_during_a_read_is_not_missed(tmp_path: Path) -> None:
    """A read of g1 is under way (its snapshot taken: a large record, a busy loop) when
    another process stores g2 and sync() applies that change, with nothing held yet; then
    the read lands in memory. g1 must not stay held for good: no later change drops it."""
    async with opened(tmp_path) as one, opened(tmp_path) as other:
        writer, reader = store(one), store(other)
        await _save(writer, "/a", "g1", 1.0)
        await reader.sync()
        read, resume = asyncio.Event(), asyncio.Event()
        original = other.get

        async def get_then_wait(build_id: str, path: str) -> bytes | None:
            raw = await original(build_id, path)
            read.set()
            await resume.wait()  # the read's thread has its snapshot; it returns after the sync
            return raw

        other.get = get_then_wait  # type: ignore[method-assign]
        loading = asyncio.create_task(reader.load("/a"))
        await read.wait()
        await _save(writer, "/a", "g2", 2.0)
        await reader.sync()
        resume.set()
        assert (await loading).generation in ("g1", "g2")  # type: ignore[union-attr]  # either is fine for that request
        await reader.sync()
        held = reader.memory.peek("/a")
        assert held is None or held.generation == "g2"


async def test_a_burst_of_writes_elsewhere_drops_only_the_paths_written(tmp_path: Path) -> None:
    async with opened(tmp_path) as one, opened(tmp_path) as other:
        writer, reader = store(one), store(other)
        paths = [f"/{kind}/{n}" for kind in ("keep", "burst") for n in range(50)]
        await writer.save_all([as_stored(r, r.to_bytes()) for r in (record(path, "g1") for path in paths)])
        held = {path: await reader.load(path) for path in paths}
        await reader.sync()
        burst = [record(f"/burst/{n}", "g2", started_at=2.0) for n in range(5_000)]
        await writer.save_all([as_stored(r, r.to_bytes()) for r in burst])
        began = time.perf_counter()
        await reader.sync()
        print(f"sync after 5,000 writes elsewhere: {(time.perf_counter() - began) * 1000:.0f} ms")
        assert all(reader.memory.peek(f"/burst/{n}") is None for n in range(50))
        assert all(reader.memory.peek(f"/keep/{n}") is held[f"/keep/{n}"] for n in range(50))
        assert len(reader.memory) == 50


async def test_a_store_that_fell_behind_the_log_drops_what_it_holds_and_rereads_marks(tmp_path: Path) -> None:
    async with opened(tmp_path) as one, opened(tmp_path) as other:
        writer, reader = store(one), store(other)
        await _save(writer, "/a", "g1", 1.0, ("t",))
        held = await reader.load("/a")
        await reader.sync()
        await writer.revalidate_tag("t")
        changes = other.changes

        async def pruned(build_id: str, since: int) -> tuple[int, None]:
            return (await changes(build_id, since))[0], None

        other.changes = pruned  # type: ignore[method-assign,assignment]
        await reader.sync()
        assert len(reader.memory) == 0 and reader.memory.bytes == 0
        other.changes = changes  # type: ignore[method-assign]
        reloaded = await reader.load("/a")
        assert reloaded is not None and reloaded is not held and reloaded.stale_at == 0.0  # the marks were read again


async def test_a_mark_made_before_the_first_sync_reaches_what_was_read_before_it(tmp_path: Path) -> None:
    """A server's following starts late on a busy machine: it read a page (and the tag marks)
    before another process marked the page's tag, and its first sync only counts the change
    log. The mark must still make the page stale, and pages read after it too."""
    async with opened(tmp_path) as one, opened(tmp_path) as other:
        here, there = store(one), store(other)
        await _save(here, "/t1", "g1", tags=("t",))
        await _save(here, "/t2", "g1", tags=("t",))
        held_there = await there.load("/t1")  # the marks read now: none
        assert held_there is not None and held_there.stale_at == 61.0
        await here.revalidate_tag("t")
        await there.sync()  # the first: counts past the mark
        assert held_there.stale_at == 0.0
        assert (await there.load("/t2")).stale_at == 0.0  # type: ignore[union-attr]


async def test_revalidate_tag_marks_stale_here_elsewhere_and_on_later_reads(tmp_path: Path) -> None:
    async with opened(tmp_path) as one, opened(tmp_path) as other:
        here, there = store(one), store(other)
        t1 = await _save(here, "/t1", "g1", tags=("t",))
        t2 = await _save(here, "/t2", "g1", tags=("t", "u"))
        u = await _save(here, "/u", "g1", tags=("u",))
        future = await _save(here, "/future", "g1", time.time() + 100, ("t",))  # starts after the mark below
        held_there = await there.load("/t1")
        future_there = await there.load("/future")
        await there.sync()
        assert await here.revalidate_tag("t") == ["/t1", "/t2"]
        assert t1.stale_at == 0.0 and t2.stale_at == 0.0 and u.stale_at == 61.0 and future.stale_at > 0
        assert held_there is not None and held_there.stale_at == 61.0  # not yet told
        await there.sync()
        assert held_there.stale_at == 0.0
        assert future_there is not None and future_there.stale_at > 0
        assert (await there.load("/t2")).stale_at == 0.0  # type: ignore[union-attr]
        assert (await there.load("/u")).stale_at == 61.0  # type: ignore[union-attr]
        later = store(backend(tmp_path))
        assert (await later.load("/t1")).stale_at == 0.0  # type: ignore[union-attr]
        assert (await later.load("/u")).stale_at == 61.0  # type: ignore[union-attr]
        await later.backend.close()


async def test_a_generation_started_before_a_tag_mark_is_stale_when_saved(tmp_path: Path) -> None:
    """The lost-revalidation case: a regeneration that read its data before the tag was
    revalidated, and finished after, stores a stale record (here, elsewhere, later)."""
    async with opened(tmp_path) as one, opened(tmp_path) as other:
        here, there = store(one), store(other)
        await here.sync()
        await there.sync()
        before = time.time()
        await here.revalidate_tag("t")
        late = await _save(here, "/late", "g1", before - 1.0, ("t",))
        assert late.stale_at == 0.0
        fresh = await _save(here, "/fresh", "g1", time.time() + 1.0, ("t",))
        assert fresh.stale_at == fresh.started_at + 60
        untagged = await _save(here, "/untagged", "g1", before - 1.0, ("other",))
        assert untagged.stale_at == before - 1.0 + 60
        elsewhere = await _save(there, "/elsewhere", "g1", before - 1.0, ("t",))  # there has not synced since the mark
        await there.sync()
        assert elsewhere.stale_at == 0.0
        assert (await there.load("/late")).stale_at == 0.0  # type: ignore[union-attr]
        assert (await there.load("/fresh")).stale_at == fresh.started_at + 60  # type: ignore[union-attr]
        later = store(backend(tmp_path))
        assert (await later.load("/elsewhere")).stale_at == 0.0  # type: ignore[union-attr]
        await later.backend.close()


async def test_saving_an_older_started_generation_returns_the_stored_newer_one(tmp_path: Path) -> None:
    async with opened(tmp_path) as one, opened(tmp_path) as other:
        here, there = store(one), store(other)
        await _save(here, "/a", "g0", 0.5)
        assert (await there.load("/a")).generation == "g0"  # type: ignore[union-attr]
        await _save(here, "/a", "g2", 2.0)  # a newer revalidation elsewhere, not yet synced there
        kept = await _save(there, "/a", "g1", 1.0)
        assert kept.generation == "g2"
        assert there.memory.peek("/a") is kept
        assert Record.from_bytes(await one.get("b1", "/a") or b"").generation == "g2"


async def test_flush_touches_sends_the_served_paths_to_the_backend(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        here = store(disk)
        await _save(here, "/a", "g1")
        await _save(here, "/b", "g1")
        touches = calls_of(disk, "touch")
        later = time.time() + USE_STAMP_EVERY_S  # writing them stamped them: until then, serving them tells nothing new
        here.memory.touch(here.memory.peek("/a"), now=later - 1)  # type: ignore[arg-type]
        await here.flush_touches()
        assert [set(paths) for _, paths in touches] == [set()]
        here.memory.touch(here.memory.peek("/a"), now=later)  # type: ignore[arg-type]
        here.memory.touch(here.memory.peek("/b"), now=later)  # type: ignore[arg-type]
        await here.flush_touches()
        assert [(build, set(paths)) for build, paths in touches][-1] == ("b1", {"/a", "/b"})
        assert here.memory.touched == set()
        here.memory.touch(here.memory.peek("/a"), now=later + 1)  # type: ignore[arg-type]  # told a second ago
        await here.flush_touches()
        assert set(touches[-1][1]) == set()


async def test_a_page_read_from_the_backend_is_not_stamped_again_by_its_first_hits(tmp_path: Path) -> None:
    """The read renews a stale use stamp itself; the HITs right after it would write the same again."""
    async with opened(tmp_path) as disk:
        await _save(store(disk), "/a", "g1")
        here = store(disk)  # another process: it reads /a from the disk
        touches = calls_of(disk, "touch")
        read = await here.load("/a")
        assert read is not None and read.generation == "g1"
        here.memory.touch(read, time.time())
        await here.flush_touches()
        assert [set(paths) for _, paths in touches] == [set()]


# -- the revalidate endpoint's report ----------------------------------------------


class Routes:
    """/t/<n> is an ISR page, /api/<n> an API function, nothing else is routed."""

    page = SimpleNamespace(cached=True, kind="ISR", file="pages/t/[n].py", page="/t/[n]")
    api = SimpleNamespace(cached=False, kind="API", file="api/[n].py", page="/api/[n]")

    def match(self, segments: list[str]) -> tuple[Any, dict[str, str]] | None:
        if len(segments) == 2 and segments[0] in ("t", "api"):
            return (self.page if segments[0] == "t" else self.api), {"n": segments[1]}
        return None


class Engine:
    """What revalidate() uses of the engine: its store, routes, and a regeneration that
    starts now (after the tags' marks) and fails for /t/broken."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.site = SimpleNamespace(routes=Routes())
        self.regenerated: list[str] = []

    async def allowed(self, route: Any, path: str) -> bool:
        return path != "/t/unlisted"

    async def revalidate(self, route: Any, params: Any, path: str) -> Record:
        if path == "/t/broken":
            raise FunctionFailed("boom")
        self.regenerated.append(path)
        return await _save(self.store, path, "g2", time.time(), ("t",))


async def test_revalidate_reports_in_the_order_asked_and_never_lists_a_regenerated_path_stale(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        engine = Engine(store(disk))
        for path, tags in (("/t/1", ("t", "u")), ("/t/2", ("t",)), ("/t/3", ("t",)), ("/t/4", ("u",))):
            await _save(engine.store, path, "g1", 1.0, tags)
        paths = ["/t/2", "/nothing/here", "/t/%31", "/api/x", "/t/2", "/t/broken", "/t/unlisted"]
        report = await revalidate(engine, paths, ["u", "t", "u"])  # type: ignore[arg-type]
        assert report.revalidated == ["/t/2", "/t/%31"]
        assert sorted(engine.regenerated) == ["/t/1", "/t/2"]
        assert report.stale == ["/t/4", "/t/3"]  # u's paths, then t's, each once, without the regenerated ones
        assert [(e["path"], e["code"]) for e in report.errors] == [
            ("/nothing/here", "NOT_FOUND"),
            ("/api/x", "NOT_CACHED"),
            ("/t/broken", "FUNCTION_INVOCATION_FAILED"),
            ("/t/unlisted", "NOT_FOUND"),
        ]
        held = {path: await engine.store.load(path) for path in ("/t/1", "/t/2", "/t/3", "/t/4")}
        assert {path: r is not None and r.stale_at == 0 for path, r in held.items()} == {
            "/t/1": False, "/t/2": False, "/t/3": True, "/t/4": True,
        }
        assert report.as_json() == {"revalidated": report.revalidated, "stale": report.stale, "errors": report.errors}


# -- a shared backend that does not answer -------------------------------------------


class Down:
    """A backend whose every call fails as an unreachable Redis does."""

    def __getattr__(self, name: str) -> Any:
        async def unavailable(*args: Any) -> Any:
            raise CacheUnavailable("redis redis://127.0.0.1:1/0 is unreachable")

        return unavailable


async def test_every_store_call_degrades_while_the_backend_does_not_answer() -> None:
    down = RecordStore(Down(), "b1", MemoryCache(10**7))  # type: ignore[arg-type]
    down.usage = (3, 300)
    assert await down.load("/a") is None  # a miss: rendered here
    saved = await _save(down, "/a", "g1")
    assert saved.generation == "g1" and await down.load("/a") is saved  # kept in memory meanwhile
    assert await down.static_paths("/items/[id]") is None  # the engine asks the page itself
    await down.put_static_paths("/items/[id]", ["/items/a"])
    await down.count_usage()
    assert down.usage == (3, 300)  # as last counted
    assert await down.servers("i1") == {}
    token = await down.acquire_lease("/a", 10.0)
    assert token is not None and await down.renew_lease("/a", token, 10.0)
    await down.release_lease("/a", token)


async def test_a_full_store_serves_a_page_read_once_without_evicting_the_pages_it_holds(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        writer = store(disk)
        await _save(writer, "/hot", "g1")
        await _save(writer, "/cold", "g1")
        hot = await writer.load("/hot")
        assert hot is not None
        reader = store(backend(tmp_path), max_bytes=hot.size + 500)  # room for one page
        assert await reader.load("/hot") is not None and reader.memory.peek("/hot") is not None
        cold = await reader.load("/cold")
        assert cold is not None and cold.generation == "g1"  # served
        assert reader.memory.peek("/cold") is None and reader.memory.peek("/hot") is not None  # not kept
        for _ in range(ADMIT_MARGIN - 1):
            assert await reader.load("/cold") is not None and reader.memory.peek("/cold") is None
        # read ADMIT_MARGIN times more than /hot was used (once: its own read): kept
        assert await reader.load("/cold") is not None and reader.memory.peek("/cold") is not None
        await reader.backend.close()


async def test_a_read_nobody_waits_for_any_more_is_not_started_again(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await _save(store(disk), "/a", "g1")
        reader = store(backend(tmp_path))
        gets = calls_of(reader.backend, "get")
        first = asyncio.ensure_future(reader.load("/a"))
        await asyncio.sleep(0)  # its read is under way
        first.cancel()  # a dropped client, and nobody else asked
        with contextlib.suppress(asyncio.CancelledError):
            await first
        for _ in range(3):
            await asyncio.sleep(0)  # a read handed over would have started by now
        assert len(gets) == 1 and reader.memory.peek("/a") is None  # no read started for nobody
        assert (await reader.load("/a")).generation == "g1"  # type: ignore[union-attr]
        await reader.backend.close()


async def test_a_page_memory_would_not_keep_is_read_as_its_stored_response_only(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        writer = store(disk)
        pages = [page_record(n, 4_000, started_at=time.time()) for n in (1, 2, 3)] + [page_record(4, 4_000, started_at=1.0)]
        for page in pages:
            await writer.save(page, page.to_bytes())
        reader = store(backend(tmp_path), max_bytes=pages[0].size + 500)  # room for one page
        await reader.sync()  # following the change log from here, as a server does from its start
        assert await reader.served("/blog/post-1", "html", "br") is None  # room: the engine reads the record and keeps it
        assert await reader.load("/blog/post-1") is not None
        served = await reader.served("/blog/post-2", "html", "br")
        assert served is not None and reader.memory.peek("/blog/post-2") is None  # served, not kept
        assert (bytes(served.head), bytes(served.body)) == (pages[1].html.head("br"), pages[1].html.bodies["br"])
        assert await reader.served("/blog/post-9", "html", "br") is None  # none stored: the engine renders it
        assert await reader.served("/blog/post-4", "html", "br") is None  # stale (revalidate 60): the engine answers
        assert "/blog/post-4" not in reader.memory._seen  # and its read counts once, when the engine's is served
        await writer.revalidate_tag("post-3")
        await reader.sync()
        assert await reader.served("/blog/post-3", "html", "identity") is None  # marked stale: the engine answers (STALE)
        await reader.backend.close()


async def test_a_record_of_another_isr_layout_reads_as_none_and_is_rendered_again(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        old = page_record(1, 2_000).to_bytes()
        await disk.put("b1", [stored("/blog/post-1", raw=b"isr2" + old[4:]), stored("/bad", raw=b"isr3\x00\x00\x00\x05{bad}")])
        assert await disk.get_served("b1", "/blog/post-1", "html", "identity") is None
        assert await store(disk).load("/blog/post-1") is None
        assert await store(disk).load("/bad") is None  # damaged: rendered again too


async def test_a_response_read_once_is_read_again_from_its_spill_without_the_read_process(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        writer = store(disk)
        pages = [page_record(n, 4_000, started_at=time.time()) for n in (1, 2, 3)]
        for page in pages:
            await writer.save(page, page.to_bytes())
        reader = store(backend(tmp_path), max_bytes=pages[0].size + 500)  # room for one page
        await reader.sync()
        for _ in range(9):
            assert await reader.load("/blog/post-1") is not None  # memory is full, with a page in use
        gets = calls_of(reader.backend, "get_served")
        first = await reader.served("/blog/post-2", "html", "gzip")
        again = await reader.served("/blog/post-2", "html", "gzip")
        assert first is not None and again is not None and len(gets) == 1  # the second came from the spill file
        assert (bytes(again.head), bytes(again.body)) == (pages[1].html.head("gzip"), pages[1].html.bodies["gzip"])
        assert (again.status, again.generated_at, again.tags) == (first.status, first.generated_at, first.tags)
        other = await reader.served("/blog/post-2", "data", "identity")  # another response: read, then spilled too
        assert other is not None and bytes(other.body) == pages[1].data.bodies["identity"] and len(gets) == 2
        await reader.backend.close()


async def _full_reader(tmp_path: Path, writer: RecordStore, pages: list[Record]) -> RecordStore:
    """A reader with room for page 1 only, page 1 in use: the other pages are served unkept."""
    for page in pages:
        await writer.save(page, page.to_bytes())
    reader = store(backend(tmp_path), max_bytes=pages[0].size + 500)
    await reader.sync()
    for _ in range(9):
        assert await reader.load("/blog/post-1") is not None
    return reader


async def test_a_newer_generation_written_elsewhere_is_served_instead_of_the_spilled_one(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        writer = store(disk)
        reader = await _full_reader(tmp_path, writer, [page_record(n, 4_000, started_at=time.time()) for n in (1, 2)])
        assert await reader.served("/blog/post-2", "html", "identity") is not None
        assert reader.spilled("/blog/post-2", "html", "identity") is not None  # spilled, and read back at once
        newer = page_record(2, 4_000, generation="g2", started_at=time.time())
        await writer.save(newer, newer.to_bytes())
        await reader.sync()  # the change log: page 2 has a newer generation
        assert reader.spilled("/blog/post-2", "html", "identity") is None  # not the old one
        served = await reader.served("/blog/post-2", "html", "identity")
        assert served is not None and bytes(served.body) == newer.html.bodies["identity"]
        await reader.backend.close()


async def test_a_response_read_while_its_page_changed_is_not_spilled(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        writer = store(disk)
        reader = await _full_reader(tmp_path, writer, [page_record(n, 4_000, started_at=time.time()) for n in (1, 2)])
        read = reader.backend.get_served

        async def read_then_change(*key: str) -> Any:
            response = await read(*key)  # the old generation, spilled by the read process
            newer = page_record(2, 4_000, generation="g2", started_at=time.time())
            await writer.save(newer, newer.to_bytes())
            await reader.sync()  # the change arrives before the read's answer is used
            return response

        reader.backend.get_served = read_then_change  # type: ignore[method-assign]
        assert await reader.served("/blog/post-2", "html", "identity") is not None  # served once (it was current when read)
        assert reader.spilled("/blog/post-2", "html", "identity") is None  # but not kept to be read again
        await reader.backend.close()


async def test_a_spilled_response_is_read_back_at_once_only_while_fresh(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        writer = store(disk)
        pages = [page_record(n, 4_000, started_at=time.time()) for n in (1, 2)] + [page_record(3, 4_000, started_at=1.0)]
        reader = await _full_reader(tmp_path, writer, pages)
        assert await reader.served("/blog/post-2", "html", "br") is not None
        assert await reader.served("/blog/post-3", "html", "br") is None  # stale (revalidate 60): the engine answers
        assert reader.spilled("/blog/post-3", "html", "br") is None  # spilled, but stale
        assert reader.spilled("/blog/post-2", "html", "br") is not None
        await writer.revalidate_tag("post-2")
        await reader.sync()
        assert reader.spilled("/blog/post-2", "html", "br") is None  # marked stale: the engine answers (STALE)
        assert await reader.served("/blog/post-2", "html", "br") is None
        await reader.backend.close()


async def test_a_generation_saved_here_replaces_its_spilled_responses(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        writer = store(disk)
        reader = await _full_reader(tmp_path, writer, [page_record(n, 4_000, started_at=time.time()) for n in (1, 2)])
        assert await reader.served("/blog/post-2", "html", "identity") is not None
        assert reader.spilled("/blog/post-2", "html", "identity") is not None
        newer = page_record(2, 4_000, generation="g2", started_at=time.time())
        await reader.save(newer, newer.to_bytes())  # regenerated by this process
        reader.memory.drop("/blog/post-2")  # and pushed out of memory before the change log says anything
        for _ in range(9):
            assert await reader.load("/blog/post-1") is not None  # memory full again, with a page in use
        assert reader.spilled("/blog/post-2", "html", "identity") is None  # not the older generation
        assert (await reader.load("/blog/post-2")).generation == "g2"  # type: ignore[union-attr]
        await reader.backend.close()


async def test_a_response_read_while_this_process_saved_a_newer_generation_is_not_spilled(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        writer = store(disk)
        reader = await _full_reader(tmp_path, writer, [page_record(n, 4_000, started_at=time.time()) for n in (1, 2)])
        newer = page_record(2, 4_000, generation="g2", started_at=time.time() + 1)
        read = reader.backend.get_served

        async def read_while_saved_here(*key: str) -> Any:
            reading = read(*key)  # the read process reads g1 and spills it...
            await reader.save(newer, newer.to_bytes())  # ...while this process stores g2
            return await reading

        reader.backend.get_served = read_while_saved_here  # type: ignore[method-assign]
        await reader.served("/blog/post-2", "html", "identity")
        reader.backend.get_served = read  # type: ignore[method-assign]
        reader.memory.drop("/blog/post-2")  # pushed out of memory before the change log says anything
        for _ in range(9):
            assert await reader.load("/blog/post-1") is not None
        back = reader.spilled("/blog/post-2", "html", "identity")
        # never g1's response; g2's when the read process read the record after the save
        assert back is None or back.started_at == newer.started_at, back
        await reader.backend.close()


async def test_the_news_of_the_generation_spilled_keeps_it_spilled(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        writer = store(disk)
        reader = await _full_reader(tmp_path, writer, [page_record(1, 4_000, started_at=time.time())])
        pages = [page_record(n, 4_000, started_at=time.time()) for n in (2, 3)]
        for page in pages:
            await writer.save(page, page.to_bytes())  # news the reader has not applied yet
        assert await reader.served("/blog/post-2", "html", "identity") is not None
        read = reader.backend.get_served

        async def read_while_its_news_arrive(*key: str) -> Any:
            reading = read(*key)
            await reader.sync()  # the change log tells of pages 2 and 3: the generations spilled and being read
            return await reading

        reader.backend.get_served = read_while_its_news_arrive  # type: ignore[method-assign]
        assert await reader.served("/blog/post-3", "html", "identity") is not None
        assert reader.spilled("/blog/post-2", "html", "identity") is not None  # the news was of its own generation
        assert reader.spilled("/blog/post-3", "html", "identity") is not None  # the same, for a read under way
        await reader.backend.close()
