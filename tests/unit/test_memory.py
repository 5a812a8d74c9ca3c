"""The in-process LRU: bounded in the bytes Python really holds, generations only move forward."""

from __future__ import annotations

import gc
import time
import tracemalloc

import pytest

from isr.cache import memory as memory_module
from isr.cache.memory import (
    ADMIT_MARGIN, ALIAS_OVERHEAD, ALIASES_PER_PATH, SEEN_KEPT, SPILL_ENTRY, TAG_OVERHEAD, MemoryCache,
)
from isr.cache.record import Record
from isr.constants import USE_STAMP_EVERY_S

from cache_support import memory, page_record, record


def test_bytes_match_what_python_allocates() -> None:
    """2,000 pages of 0 B, 3 KB and 12 KB (with br and gzip variants), their tags and two
    hot-path aliases each: `bytes` is within 15 % of the traced growth of the heap once every
    coding has been served (its headers are built on its first response), and never below it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = MemoryCache(10**10)
        for n in range(2_000):
            held = page_record(n, (0, 3_000, 12_000)[n % 3])
            cache.put(held)
            cache.alias(held.path, held)
            cache.alias(f"/_isr/data/b1{held.path}.json", held)
        del held
        gc.collect()
        unserved = tracemalloc.get_traced_memory()[0] - before
        for path in [f"/blog/post-{n}" for n in range(2_000)]:
            served = cache.peek(path)
            assert served is not None
            for variant in (served.html, served.data):
                for coding in variant.encodings:
                    variant.head(coding)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(f"memory.bytes {cache.bytes:,} for {grown:,} bytes traced ({cache.bytes / grown:.3f})")
    assert set(cache.get("/blog/post-2").html.bodies) == {"identity", "br", "gzip"}  # type: ignore[union-attr]
    assert set(cache.get("/blog/post-1").html.bodies) == {"identity", "br", "gzip"}  # type: ignore[union-attr]
    assert 0.85 * grown <= cache.bytes <= 1.15 * grown
    assert cache.bytes >= unserved


def test_aliases_and_tag_entries_are_counted_and_uncounted() -> None:
    cache = memory()
    first = record("/a", "g1", tags=("x", "y"))
    cache.put(first)
    assert cache.bytes == first.size + 2 * TAG_OVERHEAD
    cache.alias("/a", first)
    cache.alias("/a", first)  # known already
    cache.alias("/%61", first)
    assert cache.bytes == first.size + 2 * TAG_OVERHEAD + 2 * ALIAS_OVERHEAD + len("/a") + len("/%61")
    cache.alias("/b", record("/b", "g1"))  # a record not held gets no alias
    assert "/b" not in cache.hot
    newer = record("/a", "g2", b"longer body", tags=("y",))
    cache.put(newer)  # the aliases stay, now naming the newer record
    assert cache.bytes == newer.size + TAG_OVERHEAD + 2 * ALIAS_OVERHEAD + len("/a") + len("/%61")
    cache.drop("/a")
    assert cache.bytes == 0 and cache.hot == {} and cache.with_tag("y") == []


def test_aliases_per_path_are_bounded() -> None:
    cache = memory()
    held = record("/a", "g1")
    cache.put(held)
    for n in range(ALIASES_PER_PATH + 5):
        cache.alias(f"/a?{n}", held)
    assert len(cache.hot) == ALIASES_PER_PATH
    assert cache.bytes == held.size + sum(ALIAS_OVERHEAD + len(f"/a?{n}") for n in range(ALIASES_PER_PATH))


def test_clear_uncounts_everything() -> None:
    cache = memory()
    for n in range(50):
        held = record(f"/{n}", "g1", b"body" * n, tags=("all", f"own-{n}"))
        cache.put(held)
        cache.alias(f"/{n}", held)
    cache.clear()
    assert (cache.bytes, len(cache), cache.hot, cache.with_tag("all")) == (0, 0, {}, [])


def test_eviction_keeps_the_bound_and_drops_the_least_recently_used() -> None:
    one = record("/x", "g1").size
    cache = memory(max_bytes=5 * one)
    held = {path: record(path, "g1") for path in ("/a", "/b", "/c", "/d", "/e", "/f", "/g")}
    for path in ("/a", "/b", "/c", "/d", "/e"):
        cache.put(held[path])
    assert len(cache) == 5 and cache.bytes == 5 * one
    cache.get("/a")  # used: most recent now
    cache.touch(held["/b"], now=0.0)  # served: most recent now
    cache.peek("/c")  # looked at, not used
    cache.put(held["/f"])
    assert cache.bytes <= cache.max_bytes and cache.peek("/c") is None
    cache.put(held["/g"])
    assert cache.bytes <= cache.max_bytes and cache.peek("/d") is None
    assert {path for path in held if cache.peek(path) is not None} == {"/e", "/a", "/b", "/f", "/g"}


def test_an_evicted_record_takes_its_aliases_and_tag_entries_along() -> None:
    first = record("/a", "g1", b"a" * 500, tags=("t",))
    cache = memory(max_bytes=2 * first.size + 2 * TAG_OVERHEAD + ALIAS_OVERHEAD + 10)
    cache.put(first)
    cache.alias("/a", first)
    cache.put(record("/b", "g1", b"b" * 500, tags=("t",)))
    cache.put(record("/c", "g1", b"c" * 500, tags=("t",)))
    assert cache.peek("/a") is None and "/a" not in cache.hot
    assert sorted(r.path for r in cache.with_tag("t")) == ["/b", "/c"]
    assert cache.bytes == sum(r.size + TAG_OVERHEAD for r in cache.with_tag("t"))


def test_an_alias_keeps_the_memory_within_its_bound() -> None:
    """Aliases are counted in `bytes`, so adding them must evict like a put does."""
    one = record("/x", "g1").size
    cache = memory(max_bytes=10 * one)
    held = [record(f"/{n}", "g1") for n in range(10)]
    for each in held:
        cache.put(each)
    for each in held:
        for n in range(ALIASES_PER_PATH):
            cache.alias(f"{each.path}?{n}", each)
    assert cache.bytes <= cache.max_bytes


def test_an_alias_of_a_record_no_longer_held_keeps_nothing() -> None:
    """A response's record may have been evicted by concurrent requests before its alias is
    added: memory must then keep nothing for it, counted or not."""
    cache = memory()
    gone = [record(f"/junk/{n}", "g1") for n in range(10_000)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for each in gone:
            cache.alias(each.path, each)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.bytes == 0 and cache.hot == {}
    assert grown < 100_000, f"{grown:,} bytes kept for 10,000 aliases of records not held"


def test_an_older_generation_never_replaces_a_newer_one() -> None:
    cache = memory()
    newer = record("/a", "g2")
    cache.put(newer)
    cache.put(record("/a", "g1"))
    assert cache.get("/a") is newer
    reread = record("/a", "g1")
    cache.put(reread, newer_only=False)  # the backend's record replaces whatever memory held
    assert cache.get("/a") is reread and cache.bytes == reread.size


def test_a_put_of_the_same_generation_only_lowers_stale_at() -> None:
    cache = memory()
    held = record("/a", "g1", started_at=1.0, revalidate=60)
    cache.put(held)
    bytes_held = cache.bytes
    expired = record("/a", "g1", b"other", started_at=1.0)
    expired.expire()
    cache.put(expired)
    assert cache.get("/a") is held and held.stale_at == 0.0 and cache.bytes == bytes_held
    cache.put(record("/a", "g1", started_at=1.0, revalidate=600))
    assert cache.get("/a") is held and held.stale_at == 0.0


def test_hot_aliases_follow_a_replaced_record() -> None:
    cache = memory()
    first = record("/a", "g1", b"<p>1</p>", data=b'{"n": 1}')
    cache.put(first)
    cache.alias("/a", first)
    cache.alias("/_isr/data/b1/a.json", first)
    newer = record("/a", "g2", b"<p>2</p>", data=b'{"n": 2}')
    cache.put(newer)
    assert cache.hot["/a"] is newer and cache.hot["/_isr/data/b1/a.json"] is newer
    cache.put(record("/a", "g0"))  # refused: the aliases keep naming the newer record
    assert cache.hot["/a"] is newer


def test_touch_reports_a_path_to_the_disk_at_most_once_per_period() -> None:
    cache = memory()
    held = record("/a", "g1")
    cache.put(held)
    now = time.time()
    cache.touch(held, now)
    assert cache.touched == set()  # the backend stamped it when it was written or read: not yet
    cache.touch(held, now + USE_STAMP_EVERY_S + 1)
    assert cache.touched == {"/a"}
    cache.touched.clear()
    cache.touch(held, now + 2 * USE_STAMP_EVERY_S)
    assert cache.touched == set()
    cache.touch(held, now + 2 * USE_STAMP_EVERY_S + 2)
    assert cache.touched == {"/a"}


def test_with_tag_lists_the_records_held_that_carry_it() -> None:
    cache = memory()
    for path, tags in (("/a", ("blog", "a")), ("/b", ("blog",)), ("/c", ("shop",))):
        cache.put(record(path, "g1", tags=tags))
    assert sorted(r.path for r in cache.with_tag("blog")) == ["/a", "/b"]
    assert cache.with_tag("nothing") == []
    newer = record("/a", "g2", tags=("shop",))  # the newer generation moved to another tag
    cache.put(newer)
    assert [r.path for r in cache.with_tag("blog")] == ["/b"] and cache.with_tag("a") == []
    assert sorted(r.path for r in cache.with_tag("shop")) == ["/a", "/c"] and newer in cache.with_tag("shop")
    cache.drop("/b")
    assert cache.with_tag("blog") == []


def _full_of_page_1(uses: int) -> tuple[MemoryCache, Record]:
    """A cache with room for one page, holding page 1, served `uses` times from memory."""
    first = page_record(1, 3_000)
    cache = MemoryCache(first.size + TAG_OVERHEAD * 2 + 100)
    assert cache.admits(first)  # it fits: kept at once
    cache.put(first)
    for _ in range(uses):
        cache.touch(first, now=0.0)
    return cache, first


def test_a_full_cache_keeps_a_record_read_more_often_than_the_one_it_would_evict_was_used() -> None:
    cache, first = _full_of_page_1(uses=3)
    second = page_record(2, 3_000)
    reads = 3 + ADMIT_MARGIN  # page 1's 3 uses and the margin
    assert [cache.admits(second) for _ in range(reads)] == [False] * (reads - 1) + [True]
    cache.put(second)
    assert cache.get("/blog/post-2") is second and cache.peek("/blog/post-1") is None  # served to its reader, as the store does
    assert cache.admits(second)  # held already
    for _ in range(4):
        cache.touch(second, now=0.0)
    reads = reads + 4 + ADMIT_MARGIN  # page 2 counts its reads and 4 uses
    assert [cache.admits(first) for _ in range(reads)] == [False] * (reads - 1) + [True]


def test_the_counts_of_reads_are_bounded_and_fade() -> None:
    cache, first = _full_of_page_1(uses=3)
    for n in range(3, 3 + SEEN_KEPT + 1):  # one read each: never kept, and the counts halve once
        assert not cache.admits(page_record(n, 0))
    assert len(cache._seen) <= SEEN_KEPT
    second = page_record(2, 3_000)
    reads = 1 + ADMIT_MARGIN  # page 1's 3 uses are 1 now
    assert [cache.admits(second) for _ in range(reads)] == [False] * (reads - 1) + [True]


def test_a_page_that_was_hot_once_makes_way_in_time() -> None:
    cache, first = _full_of_page_1(uses=100_000)  # halved as they came: a hot page's count stays bounded
    second = page_record(2, 3_000)
    reads = next(n for n in range(1, 4 * SEEN_KEPT) if cache.admits(second))
    assert reads < 3 * SEEN_KEPT  # page 1 is idle now: its count fades while page 2's grows


def test_a_new_generation_of_a_page_in_use_keeps_its_uses() -> None:
    cache, first = _full_of_page_1(uses=3)
    cache.put(page_record(1, 3_000, generation="g2"))
    second = page_record(2, 3_000)
    reads = 3 + ADMIT_MARGIN
    assert [cache.admits(second) for _ in range(reads)] == [False] * (reads - 1) + [True]


def test_wants_answers_before_a_read_what_admits_would_after_it() -> None:
    cache = MemoryCache(10**6)
    assert cache.wants("/blog/post-2")  # empty: anything is kept
    cache, first = _full_of_page_1(uses=2)
    assert cache.wants("/blog/post-1")  # held
    assert not cache.wants("/blog/post-2")  # full, and never read: read as a response only
    for _ in range(1 + ADMIT_MARGIN):
        assert not cache.wants("/blog/post-2")  # the next read would not beat page 1's 2 uses by the margin...
        cache.refused("/blog/post-2")
    assert cache.wants("/blog/post-2")  # ...this one would: that read is of the whole record, and kept
    assert cache.admits(page_record(2, 3_000))


def test_spilled_locations_count_in_the_bound_and_take_at_most_half_of_it() -> None:
    cache = MemoryCache(10 * SPILL_ENTRY)
    for n in range(8):
        cache.spill((f"/p{n}", "html", "identity"), n, "g1")
    assert cache.bytes == 5 * SPILL_ENTRY  # half the bound: the oldest were forgotten
    assert cache.spilled(("/p2", "html", "identity")) is None and cache.spilled(("/p7", "html", "identity")) == 7
    assert cache.spilled(("/p7", "html", "br")) is None  # another coding: not spilled
    cache.spill(("/p7", "html", "br"), 70, "g1")
    cache.unspill("/p7", "g1")  # the generation spilled is the current one: kept
    assert cache.spilled(("/p7", "html", "br")) == 70
    cache.unspill("/p7", "g2")  # a newer generation: every response of the page goes
    assert cache.spilled(("/p7", "html", "identity")) is None and cache.spilled(("/p7", "html", "br")) is None
    assert cache.bytes == 3 * SPILL_ENTRY  # /p4, /p5 and /p6 are left
    cache.clear()
    assert cache.bytes == 0 and cache.spilled(("/p6", "html", "identity")) is None


def test_a_page_admitted_to_memory_keeps_its_spilled_responses_for_when_it_leaves() -> None:
    cache = MemoryCache(10**6)
    cache.spill(("/a", "data", "gzip"), 5, "g1")
    cache.put(record("/a", "g1"))  # the same generation, read from disk
    cache.drop("/a")
    assert cache.spilled(("/a", "data", "gzip")) == 5


def test_spilled_locations_make_room_by_evicting_records() -> None:
    held = record("/a", "g1")
    cache = MemoryCache(held.size + 4 * SPILL_ENTRY)
    cache.put(held)
    cache.put(record("/b", "g1"))
    assert cache.peek("/a") is not None or cache.peek("/b") is not None
    for n in range(2):
        cache.spill((f"/p{n}", "html", "identity"), n, "g1")
    assert cache.bytes <= cache.max_bytes


def test_a_spilled_response_read_back_is_a_use_for_the_disk_once_a_period(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(memory_module.time, "time", lambda: clock[0])
    cache = MemoryCache(10**6)
    cache.spill(("/a", "html", "br"), 9, "g1")  # just read by the read process, which stamped it
    assert cache.spilled(("/a", "html", "br")) == 9 and cache.touched == set()
    clock[0] += USE_STAMP_EVERY_S
    assert cache.spilled(("/a", "html", "br")) == 9 and cache.touched == {"/a"}
    cache.touched.clear()
    assert cache.spilled(("/a", "html", "br")) == 9 and cache.touched == set()  # once a period


def test_a_spilled_location_costs_what_python_allocates_for_it() -> None:
    cache = MemoryCache(10**9)
    locations = [(n << 64) | (n << 24) | 9_000 for n in range(50_000)]  # as large as real ones
    keys = [(f"/item/{n}", "html", "identity") for n in range(50_000)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key, location in zip(keys, locations, strict=True):
        cache.spill(key, location, "1a24ed42b69-e78fe663")
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown <= cache.bytes <= grown * 1.15, (grown / len(keys), cache.bytes / len(keys))


def test_a_hit_moves_nothing_and_a_record_used_since_the_clock_came_round_gets_a_second_chance() -> None:
    one = record("/x", "g1").size
    cache = memory(max_bytes=3 * one)
    held = {path: record(path, "g1") for path in ("/a", "/b", "/c", "/d", "/e")}
    for path in ("/a", "/b", "/c"):
        cache.put(held[path])
    cache.touch(held["/a"], now=0.0)
    assert list(cache._records) == ["/a", "/b", "/c"]  # a HIT reorders nothing
    cache.put(held["/d"])  # /a was used: it goes round again, /b goes
    assert list(cache._records) == ["/c", "/d", "/a"] and not held["/a"].referenced
    cache.put(held["/e"])
    assert list(cache._records) == ["/d", "/a", "/e"]
