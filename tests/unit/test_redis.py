"""What only the Redis backend has: URLs checked at start, and outages (Redis killed,
restarted) that degrade to memory, are logged once, fail fast and resynchronise."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

import isr.cache.redis as redis_module
from isr.cache.redis import RedisBackend, connect
from isr.cache.store import LOCAL_LEASE
from isr.errors import CacheError, CacheUnavailable

from cache_support import record, store, stored

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from redis_support import RedisServer, free_port, have_redis_server  # noqa: E402

pytestmark = pytest.mark.skipif(not have_redis_server(), reason="redis-server is not installed")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path / "redis").start()
    yield started
    started.stop()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://", "not a Redis URL"),
        ("redis://127.0.0.1:notaport/0", "not a Redis URL"),
        ("memcached://127.0.0.1:11211", "not a Redis URL"),
        ("redis://127.0.0.1:6379/0?timeout=forever", "timeout='forever' is not a number"),
        ("redis://127.0.0.1:6379/0?colour=blue", "unknown option 'colour'"),
        ("redis://127.0.0.1:6379/banana", "banana"),
    ],
)
def test_a_malformed_url_is_one_line(url: str, message: str) -> None:
    with pytest.raises(CacheError, match=message) as raised:
        connect(url)
    assert "\n" not in str(raised.value)


def test_an_unreachable_redis_is_one_line_within_the_timeout() -> None:
    began = time.monotonic()
    with pytest.raises(CacheError, match="cannot reach redis"):
        connect(f"redis://127.0.0.1:{free_port()}/0")
    assert time.monotonic() - began < 2.0


def test_a_wrong_password_is_one_line_that_does_not_show_it(tmp_path: Path) -> None:
    guarded = RedisServer(tmp_path / "redis", args=("--requirepass", "right-secret")).start()
    try:
        with pytest.raises(CacheError, match="refused the credentials") as raised:
            connect(f"redis://:wrong-secret@127.0.0.1:{guarded.port}/0")
        assert "wrong-secret" not in str(raised.value)
        connect(f"redis://:right-secret@127.0.0.1:{guarded.port}/0")  # the right one is accepted
    finally:
        guarded.stop()


async def test_an_outage_fails_fast_is_logged_once_and_resyncs(server: RedisServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_module, "PROBE_EVERY_S", 0.3)
    backend = connect(server.url)
    try:
        await backend.put("b1", [stored("/a")])
        seq, _ = await backend.changes("b1", -1)
        server.kill9()
        began = time.monotonic()
        with pytest.raises(CacheUnavailable):
            await backend.get("b1", "/a")
        assert time.monotonic() - began < 1.5  # bounded by the 0.5 s timeout (and a reconnect)
        began = time.monotonic()
        for _ in range(20):  # failing fast meanwhile: no request waits for a dead Redis
            with pytest.raises(CacheUnavailable):
                await backend.get("b1", "/a")
        assert time.monotonic() - began < 0.2
        assert not backend.health.available and backend.health.outages == 1
        outages = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(outages) == 1
        server.start()  # the same port, empty
        deadline = time.monotonic() + 5
        while True:
            try:
                now, changes = await backend.changes("b1", seq)
                break
            except CacheUnavailable:
                assert time.monotonic() < deadline, "never reconnected"
        assert changes is None  # invalidations may have been missed: the store drops its copies
        assert backend.health.available and backend.health.outages == 1
        assert [r for r in caplog.records if "is back" in r.getMessage()]
        assert (await backend.changes("b1", now))[1] == []  # and follows as before from then on
    finally:
        await backend.close()


async def test_connections_pooled_before_a_restart_do_not_make_a_second_outage(server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """After Redis restarts, every connection the pool held is dead; each is reconnected on
    its next use instead of failing that call (which would mark Redis down again)."""
    monkeypatch.setattr(redis_module, "PROBE_EVERY_S", 0.1)
    backend = connect(server.url)
    try:
        await backend.put("b1", [stored("/a")])
        await asyncio.gather(*(backend.get("b1", "/a") for _ in range(8)))  # eight pooled connections
        server.kill9()
        with pytest.raises(CacheUnavailable):
            await backend.get("b1", "/a")
        server.start()  # the same port, empty
        deadline = time.monotonic() + 5
        while not backend.health.available:
            assert time.monotonic() < deadline, "never reconnected"
            with contextlib.suppress(CacheUnavailable):
                await backend.get("b1", "/a")
            await asyncio.sleep(0.05)
        answers = await asyncio.gather(*(backend.get("b1", "/a") for _ in range(8)), return_exceptions=True)
        assert answers == [None] * 8  # an empty Redis: misses, not errors
        assert backend.health.available and backend.health.outages == 1
    finally:
        await backend.close()


async def test_a_store_on_a_dead_redis_serves_misses_from_local_renders(server: RedisServer) -> None:
    backend = connect(server.url)
    records = store(backend)  # type: ignore[arg-type]
    try:
        server.kill9()
        assert await records.load("/a") is None  # a miss: the engine renders it here
        token = await records.acquire_lease("/a", 10)
        assert token == LOCAL_LEASE and await records.renew_lease("/a", token, 10)
        await records.release_lease("/a", token)
        generated = record("/a", "g1")
        kept = await records.save(generated, generated.to_bytes())
        assert kept.generation == "g1"
        assert (held := await records.load("/a")) is not None and held.generation == "g1"  # from memory
    finally:
        await backend.close()


async def test_a_unix_socket_url_works(tmp_path: Path) -> None:
    socket = tmp_path / "redis.sock"
    local = RedisServer(tmp_path / "redis", args=("--unixsocket", str(socket))).start()
    try:
        backend = connect(f"unix://{socket}?db=2&prefix=sock&timeout=1")
        try:
            assert backend.timeout == 1.0 and backend.prefix == "sock"
            assert await backend.put("b1", [stored("/a", raw=b"over a socket")]) == [True]
            assert await backend.get("b1", "/a") == b"over a socket"
        finally:
            await backend.close()
    finally:
        local.stop()


@pytest.mark.parametrize("policy", ["volatile-lru", "allkeys-lru"])
async def test_redis_maxmemory_bounds_the_cache_and_evicted_records_read_as_misses(tmp_path: Path, policy: str) -> None:
    bounded = RedisServer(tmp_path / "redis", args=("--maxmemory", "8mb", "--maxmemory-policy", policy)).start()
    backend = connect(bounded.url)
    try:
        await backend.put_static_paths("b1", "/r/[n]", ["/r/0"])
        for batch in range(40):  # 20 MB of records through an 8 MB Redis
            written = await backend.put("b1", [stored(f"/r/{n}", 1.0, ("all",), bytes(20_000)) for n in range(batch * 25, batch * 25 + 25)])
            assert all(written)
            await backend.touch("b1", ["/r/0"])  # served from memory: a use (Redis's LRU is sampled, so no promise)
        present = {n for n in range(1000) if await backend.get("b1", f"/r/{n}") is not None}
        marked = {int(path.rpartition("/")[2]) for path in await backend.mark_tag("b1", "all", 5.0)}
        still = {n for n in present if await backend.get("b1", f"/r/{n}") is not None}  # reads too can make Redis evict
        _, used = await backend.usage("b1")
        print(f"8 MB maxmemory, {policy}: {len(present)} of 1000 records of 20 KB kept, {used / 2**20:.1f} MiB used, {len(marked)} marked")
        assert 0 < len(present) < 1000 and used < 10 * 2**20
        assert 999 in present  # the newest stay; the evicted are misses, generated again like new paths
        if policy == "volatile-lru":  # only records have a TTL: tag sets, marks and static paths stay
            # the tag set survives eviction, and the mark lists the records kept then, never an evicted one
            assert still <= marked <= present
            assert await backend.get_static_paths("b1", "/r/[n]") == ["/r/0"]
    finally:
        await backend.close()
        bounded.stop()


async def test_a_slow_redis_is_an_outage_after_the_timeout_not_a_hang(tmp_path: Path) -> None:
    slow = RedisServer(tmp_path / "redis", args=("--enable-debug-command", "yes")).start()
    backend = connect(f"{slow.url}?timeout=0.3")
    try:
        await backend.put("b1", [stored("/a")])
        sleeping = subprocess.Popen(["redis-cli", "-p", str(slow.port), "DEBUG", "SLEEP", "2"], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 1.5
            while slow.answers():  # until the server is asleep
                assert time.monotonic() < deadline, "DEBUG SLEEP never took effect"
            began = time.monotonic()
            with pytest.raises(CacheUnavailable):
                await backend.get("b1", "/a")
            took = time.monotonic() - began
        finally:
            sleeping.wait(10)
        print(f"a call to a Redis that sleeps 2 s gave up after {took * 1000:.0f} ms")
        assert took < 0.6
    finally:
        await backend.close()
        slow.stop()


async def test_revalidating_a_tag_of_50000_pages_is_bounded_calls_that_leave_redis_responsive(tmp_path: Path) -> None:
    """No one script walks the tag set: the mark is one call, the stale paths are listed by
    SSCAN batches, so every call stays within the timeout and other clients are answered."""
    local = RedisServer(tmp_path / "redis", args=("--slowlog-log-slower-than", "50000")).start()  # commands over 50 ms
    writer = connect(f"{local.url}?timeout=10")
    backend = connect(local.url)  # the default 0.5 s per call
    other = redis.asyncio.Redis(port=local.port)
    try:
        for start in range(0, 50_000, 2_000):
            await writer.put("b1", [stored(f"/items/{n}", 1.0, ("items", f"item-{n}")) for n in range(start, start + 2_000)])
        await writer.put("b1", [stored("/late", 9.0, ("items",))])  # started after the mark: not listed
        await other.slowlog_reset()
        slowest = 0.0
        call = backend._call

        async def timed(command: Any) -> Any:
            nonlocal slowest
            began = time.monotonic()
            try:
                return await call(command)
            finally:
                slowest = max(slowest, time.monotonic() - began)

        backend._call = timed  # type: ignore[method-assign]
        began = time.monotonic()
        marking = asyncio.ensure_future(backend.mark_tag("b1", "items", 5.0))
        pings: list[float] = []
        while not marking.done():
            sent = time.monotonic()
            await other.ping()
            pings.append(time.monotonic() - sent)
        paths = await marking
        took = time.monotonic() - began
        print(f"mark_tag over 50,000 tagged pages: {took * 1000:.0f} ms, slowest call {slowest * 1000:.0f} ms, "
              f"{len(pings)} pings from another client meanwhile, slowest {max(pings) * 1000:.1f} ms")  # fmt: skip
        assert len(paths) == 50_000 and "/late" not in paths and set(paths) == {f"/items/{n}" for n in range(50_000)}
        assert took < 1.0 and slowest < backend.timeout
        assert max(pings) < 0.1
        assert await other.slowlog_len() == 0  # no command held Redis for 50 ms
    finally:
        await other.aclose()
        await backend.close()
        await writer.close()
        local.stop()


async def test_a_tag_mark_removes_evicted_records_from_the_tag_set(server: RedisServer) -> None:
    backend = connect(server.url)
    raw = redis.asyncio.Redis(port=server.port, decode_responses=True)
    try:
        await backend.put("b1", [stored(f"/p/{n}", 1.0, ("t",)) for n in range(10)])
        await raw.delete(*[backend._key("b1", f"p:/p/{n}") for n in range(5)])  # what eviction does: the record's hash goes
        assert await backend.mark_tag("b1", "t", 5.0) == [f"/p/{n}" for n in range(5, 10)]
        assert await raw.smembers(backend._key("b1", "t:t")) == {f"/p/{n}" for n in range(5, 10)}
        await raw.delete(*[backend._key("b1", f"p:/p/{n}") for n in range(5, 10)])
        assert await backend.mark_tag("b1", "t", 6.0) == []
        assert not await raw.exists(backend._key("b1", "t:t")) and not await raw.sismember(backend._key("b1", "tags"), "t")
    finally:
        await raw.aclose()
        await backend.close()


async def index_sizes(raw: redis.asyncio.Redis, backend: RedisBackend, build_id: str, tag: str) -> tuple[int, int, int, int]:
    """Records present, and members of the build's paths set, of a tag's set and of its tags set."""
    records = 0
    async for _ in raw.scan_iter(match=backend._key(build_id, "p:*"), count=1000):
        records += 1
    sets = [await raw.scard(backend._key(build_id, name)) for name in ("paths", "t:" + tag, "tags")]
    return records, sets[0], sets[1], sets[2]


async def test_index_sets_shrink_as_records_go(server: RedisServer) -> None:
    """Each write looks at a few index members from where the last write stopped and removes
    those whose record is gone, so a set is walked whole within a quarter of its size in writes."""
    backend = connect(f"{server.url}?timeout=5")
    raw = redis.asyncio.Redis(port=server.port)
    try:
        for start in range(0, 4_000, 100):
            await backend.put("b1", [stored(f"/old/{n}", 1.0, ("items", f"item-{n}")) for n in range(start, start + 100)])
        async for key in raw.scan_iter(match=backend._key("b1", "p:/old/*"), count=1000):
            await raw.delete(key)  # what eviction or expiry does: the records' hashes go, nothing else
        assert await index_sizes(raw, backend, "b1", "items") == (0, 4_000, 4_000, 4_001)
        for n in range(1_000):  # a quarter as many writes, one at a time (as pages are rendered)
            await backend.put("b1", [stored(f"/new/{n}", 1.0, ("items", f"item-new-{n}"))])
        sizes = await index_sizes(raw, backend, "b1", "items")
        print(f"4,000 records gone, then 1,000 writes: records, paths, t:items, tags = {sizes}")
        assert sizes[0] == 1_000 and sizes[1] <= 1_100 and sizes[2] <= 1_100 and sizes[3] <= 1_101
        assert await backend.mark_tag("b1", "items", 5.0) == sorted(f"/new/{n}" for n in range(1_000))
    finally:
        await raw.aclose()
        await backend.close()


async def test_sweeping_leaves_the_records_lru_idle_time_alone(server: RedisServer) -> None:
    """Writes sweep other members of the index sets; that must not count as a use of their
    records, or junk a sweep looked at would outlive pages in use under `volatile-lru`."""
    backend = connect(f"{server.url}?timeout=5")
    raw = redis.asyncio.Redis(port=server.port)
    try:
        await backend.put("b1", [stored(f"/idle/{n}", 1.0, ("items",)) for n in range(10)])
        key = backend._key("b1", "p:/idle/0")
        deadline = time.monotonic() + 10
        while await raw.object("IDLETIME", key) < 2:  # Redis counts idle time in seconds
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        for n in range(10):  # each write sweeps 4 members of paths and of t:items: all ten, twice over
            await backend.put("b1", [stored(f"/new/{n}", 1.0, ("items",))])
        assert await raw.object("IDLETIME", key) >= 2
    finally:
        await raw.aclose()
        await backend.close()


async def test_a_crawler_of_junk_paths_under_maxmemory_leaves_the_index_sets_bounded(tmp_path: Path) -> None:
    """Under volatile-lru only records are evicted; the index sets naming them shrink with them."""
    bounded = RedisServer(tmp_path / "redis", args=("--maxmemory", "4mb", "--maxmemory-policy", "volatile-lru")).start()
    backend = connect(f"{bounded.url}?timeout=5")
    raw = redis.asyncio.Redis(port=bounded.port)
    try:
        for start in range(0, 30_000, 20):  # 30,000 junk paths of 1 KB through a 4 MB Redis, written as they are rendered
            written = await backend.put("b1", [stored(f"/items/junk-{n}", 1.0, ("items", f"item-junk-{n}"), bytes(1_000)) for n in range(start, start + 20)])
            assert all(written)
        sizes = await index_sizes(raw, backend, "b1", "items")
        records, _ = await backend.usage("b1")
        print(f"30,000 junk paths under 4 MB: records, paths, t:items, tags = {sizes}; usage() counts {records}")
        assert 0 < sizes[0] < 30_000
        assert max(sizes[1:]) <= 2 * sizes[0] + 100  # the index sets stay within twice the records kept
        assert records == sizes[1]
    finally:
        await raw.aclose()
        await backend.close()
        bounded.stop()


async def test_one_call_probes_a_hung_redis_at_a_time_the_others_fail_at_once(server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_module, "PROBE_EVERY_S", 0.3)
    backend = connect(server.url)
    try:
        await backend.put("b1", [stored("/a")])
        server.pause()  # every call that reaches it waits its whole timeout
        with pytest.raises(CacheUnavailable):
            await backend.get("b1", "/a")
        deadline = time.monotonic() + 5
        while time.monotonic() < backend._probe_at:  # until the next probe is due
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)

        async def timed() -> float:
            began = time.monotonic()
            with pytest.raises(CacheUnavailable):
                await backend.get("b1", "/a")
            return time.monotonic() - began

        took = sorted(await asyncio.gather(*(timed() for _ in range(50))))
        print(f"50 calls when a probe is due: the slowest {took[-1] * 1000:.0f} ms, the next {took[-2] * 1000:.1f} ms")
        assert took[-1] >= backend.timeout * 0.9  # the probe waited for the hung Redis
        assert took[-2] < 0.05  # the other 49 did not
        server.resume()
        deadline = time.monotonic() + 5
        while True:  # and a later probe finds it back
            with contextlib.suppress(CacheUnavailable):
                assert await backend.get("b1", "/a") == b"raw"
                break
            assert time.monotonic() < deadline, "never reconnected"
            await asyncio.sleep(0.05)
        assert backend.health.available and backend.health.outages == 1
    finally:
        server.resume()
        await backend.close()
