"""One set of semantics behind the cache seam: every test here runs against the disk
backend, a Redis and a three-master Redis Cluster (two backend objects on one store are
two processes or instances)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from isr.cache.backend import Backend, Change
from isr.cache.disk import DiskBackend
from isr.cache.redis import connect

from cache_support import DISK_BYTES, page_record, stored

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from redis_support import MACHINE_REDIS, RedisCluster, have_redis_server, unique_prefix, wipe  # noqa: E402

KINDS = ["disk", "redis", "cluster"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    if not have_redis_server():
        pytest.skip("redis-server is not installed")
    started = RedisCluster.start(tmp_path_factory.mktemp("cluster"))
    yield started
    started.stop()


class Backends:
    """Opens backends on one store; closes them and removes what they stored at the end."""

    def __init__(self, kind: str, folder: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.folder = folder
        self.prefix = unique_prefix()
        self.cluster: RedisCluster | None = request.getfixturevalue("cluster") if kind == "cluster" else None
        self.url = self.cluster.url if self.cluster else MACHINE_REDIS
        self.opened: list[Backend] = []

    def open(self) -> Backend:
        backend: Backend
        if self.kind == "disk":
            backend = DiskBackend(self.folder, DISK_BYTES)
        else:
            backend = connect(f"{self.url}?prefix={self.prefix}")
        self.opened.append(backend)
        return backend

    async def close(self) -> None:
        for backend in self.opened:
            await backend.close()
        if self.kind != "disk":
            wipe(self.url, self.prefix, self.cluster)


@pytest.fixture(params=KINDS)
async def backends(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backends]:
    opened = Backends(request.param, tmp_path, request)
    yield opened
    await opened.close()


@pytest.fixture
def backend(backends: Backends) -> Backend:
    return backends.open()


# -- records ------------------------------------------------------------------------


async def test_a_record_round_trips_as_one_value(backend: Backend) -> None:
    raw = bytes(range(256)) * 4000  # any bytes, 1 MB
    assert await backend.put("b1", [stored("/a", 1.0, ("t",), raw)]) == [True]
    assert await backend.get("b1", "/a") == raw


async def test_one_response_of_a_record_is_read_as_stored(backend: Backend) -> None:
    page = page_record(1, 4_000)
    await backend.put("b1", [stored(page.path, raw=page.to_bytes())])
    served = await backend.get_served("b1", page.path, "html", "br")
    assert served is not None and (bytes(served.head), bytes(served.body)) == (page.html.head("br"), page.html.bodies["br"])
    assert await backend.get_served("b1", "/missing", "html", "br") is None
    assert await backend.get_served("b2", page.path, "html", "br") is None


async def test_missing_paths_and_other_builds_read_as_none(backend: Backend) -> None:
    await backend.put("b1", [stored("/a", raw=b"one")])
    assert await backend.get("b1", "/missing") is None
    assert await backend.get("b2", "/a") is None
    await backend.put("b2", [stored("/a", raw=b"two")])
    assert (await backend.get("b1", "/a"), await backend.get("b2", "/a")) == (b"one", b"two")


async def test_put_is_fenced_by_start_time(backend: Backend) -> None:
    """A generation that started earlier never replaces one that started later."""
    assert await backend.put("b1", [stored("/a", 2.0, raw=b"newer")]) == [True]
    assert await backend.put("b1", [stored("/a", 1.0, raw=b"older")]) == [False]
    assert await backend.get("b1", "/a") == b"newer"
    assert await backend.put("b1", [stored("/a", 2.0, raw=b"equal")]) == [True]
    assert await backend.get("b1", "/a") == b"equal"
    batch = [stored("/a", 1.5, raw=b"x"), stored("/b", 1.0, raw=b"b"), stored("/a", 3.0, raw=b"latest")]
    assert await backend.put("b1", batch) == [False, True, True]
    assert await backend.get("b1", "/a") == b"latest"


async def test_a_fenced_write_from_another_instance_is_refused(backends: Backends) -> None:
    """The instance whose lease lapsed, or that read older data, cannot overwrite a later generation."""
    late, early = backends.open(), backends.open()
    assert await late.put("b1", [stored("/a", 5.0, raw=b"revalidated")]) == [True]
    assert await early.put("b1", [stored("/a", 4.0, raw=b"lapsed")]) == [False]
    assert await early.get("b1", "/a") == b"revalidated"


# -- tags ---------------------------------------------------------------------------


async def test_a_refused_write_leaves_the_tags_of_the_stored_generation(backend: Backend) -> None:
    await backend.put("b1", [stored("/a", 2.0, ("kept",))])
    await backend.put("b1", [stored("/a", 1.0, ("other",))])
    assert await backend.mark_tag("b1", "kept", 10.0) == ["/a"]
    assert await backend.mark_tag("b1", "other", 10.0) == []


async def test_tag_sets_follow_the_record_tags(backend: Backend) -> None:
    await backend.put("b1", [stored("/a", 1.0, ("x", "y")), stored("/b", 1.0, ("x",)), stored("/c", 1.0, ("y",))])
    await backend.put("b1", [stored("/a", 2.0, ("y", "z"))])  # the newer generation of /a dropped x
    assert await backend.mark_tag("b1", "x", 5.0) == ["/b"]
    assert await backend.mark_tag("b1", "y", 5.0) == ["/a", "/c"]
    assert await backend.mark_tag("b1", "z", 5.0) == ["/a"]
    assert await backend.mark_tag("b2", "y", 5.0) == []  # tags are per build
    assert await backend.tag_marks("b1") == {"x": 5.0, "y": 5.0, "z": 5.0}


async def test_mark_tag_lists_only_generations_started_at_or_before_the_mark(backend: Backend) -> None:
    await backend.put("b1", [stored("/old", 1.0, ("t",)), stored("/new", 9.0, ("t",)), stored("/at", 5.0, ("t",)), stored("/none", 1.0)])
    assert await backend.mark_tag("b1", "t", 5.0) == ["/at", "/old"]
    assert await backend.mark_tag("b1", "t", 10.0) == ["/at", "/new", "/old"]
    assert await backend.tag_marks("b1") == {"t": 10.0}


async def test_a_tag_mark_is_seen_by_every_instance(backends: Backends) -> None:
    here, there = backends.open(), backends.open()
    await here.put("b1", [stored("/a", 1.0, ("t",))])
    assert await there.mark_tag("b1", "t", 2.5) == ["/a"]
    assert await here.tag_marks("b1") == {"t": 2.5}


# -- the change log -----------------------------------------------------------------


async def test_changes_list_path_and_tag_writes_after_a_counter(backends: Backends) -> None:
    reader, writer = backends.open(), backends.open()
    seq, nothing = await reader.changes("b1", -1)
    assert nothing == []
    await writer.put("b1", [stored("/a", 1.0, generation="g-a"), stored("/b", 1.0, generation="g-b")])
    await writer.mark_tag("b1", "t", 7.5)
    now, changes = await reader.changes("b1", seq)
    assert now == seq + 3
    assert changes == [Change(seq + 1, "path", "/a", "g-a"), Change(seq + 2, "path", "/b", "g-b"), Change(seq + 3, "tag", "t", 7.5)]
    assert await reader.changes("b1", now) == (now, [])
    assert await reader.changes("b1", seq + 2) == (now, changes[2:])
    await writer.put("b1", [stored("/a", 0.5, generation="refused")])  # a refused write changes nothing
    assert await reader.changes("b1", now) == (now, [])
    await writer.put("b2", [stored("/a", 1.0)])  # another build's writes are not listed
    later, listed = await reader.changes("b1", now)
    assert listed == [] and later >= now


async def test_a_counter_from_the_future_cannot_be_listed(backend: Backend) -> None:
    """The store was replaced (a new database, a Redis restarted empty): drop everything."""
    await backend.put("b1", [stored("/a")])
    seq, _ = await backend.changes("b1", -1)
    assert (await backend.changes("b1", seq + 100))[1] is None


async def test_changed_returns_once_another_instance_writes(backends: Backends) -> None:
    waiter, writer = backends.open(), backends.open()
    await waiter.changes("b1", -1)  # a follower is following
    began = time.monotonic()
    waiting = asyncio.create_task(waiter.changed("b1", 0.2))
    await asyncio.sleep(0.01)
    await writer.put("b1", [stored("/a")])
    await asyncio.wait_for(waiting, 2.0)
    assert time.monotonic() - began < 1.0


# -- leases -------------------------------------------------------------------------


async def test_a_lease_is_exclusive_and_released_only_by_its_holder(backends: Backends) -> None:
    one, other = backends.open(), backends.open()
    token = await one.acquire_lease("b1", "/a", 30)
    assert token is not None
    assert await other.acquire_lease("b1", "/a", 30) is None
    assert await one.acquire_lease("b1", "/a", 30) is None  # not re-entrant either
    assert await other.acquire_lease("b1", "/b", 30) is not None  # per path
    assert await other.acquire_lease("b2", "/a", 30) is not None  # per build
    await other.release_lease("b1", "/a", "not-the-token")
    assert await other.acquire_lease("b1", "/a", 30) is None
    await one.release_lease("b1", "/a", token)
    assert await other.acquire_lease("b1", "/a", 30) is not None


async def test_only_the_holder_renews_a_lease_and_renewing_moves_its_expiry(backends: Backends) -> None:
    one, other = backends.open(), backends.open()
    token = await one.acquire_lease("b1", "/a", 0.3)
    assert token is not None
    assert not await other.renew_lease("b1", "/a", "not-the-token", 30)
    assert await one.renew_lease("b1", "/a", token, 30)
    await asyncio.sleep(0.5)  # past the first ttl: the renewal holds it
    assert await other.acquire_lease("b1", "/a", 30) is None


async def test_a_lease_lapses_after_its_ttl(backends: Backends) -> None:
    one, other = backends.open(), backends.open()
    token = await one.acquire_lease("b1", "/a", 1.0)  # long enough that a busy machine cannot lapse it before the next line
    assert token is not None and await other.acquire_lease("b1", "/a", 30) is None
    deadline = time.monotonic() + 6.0
    while (taken := await other.acquire_lease("b1", "/a", 30)) is None:
        assert time.monotonic() < deadline, "the lease never lapsed"
        await asyncio.sleep(0.05)
    assert not await one.renew_lease("b1", "/a", token, 30)  # ours no more
    await one.release_lease("b1", "/a", token)  # a late release leaves the new holder's lease
    assert await one.acquire_lease("b1", "/a", 30) is None
    assert taken


# -- static paths, builds, usage ----------------------------------------------------


async def test_static_paths_round_trip_per_build_and_page(backend: Backend) -> None:
    assert await backend.get_static_paths("b1", "/blog/[slug]") is None
    await backend.put_static_paths("b1", "/blog/[slug]", ["/blog/a", "/blog/ü b"])
    await backend.put_static_paths("b1", "/docs/[...p]", [])
    assert await backend.get_static_paths("b1", "/blog/[slug]") == ["/blog/a", "/blog/ü b"]
    assert await backend.get_static_paths("b1", "/docs/[...p]") == []
    assert await backend.get_static_paths("b2", "/blog/[slug]") is None


async def test_builds_in_use_are_the_ones_announced(backend: Backend) -> None:
    await backend.announce("b1", "instance-1")
    await backend.announce("b2", "instance-2")
    assert await backend.builds_in_use() == {"b1", "b2"}
    await backend.announce("b2", "instance-1")  # instance-1 switched builds
    assert await backend.builds_in_use() == {"b2"}


async def test_drop_builds_deletes_everything_other_builds_stored(backend: Backend) -> None:
    for build in ("old", "new"):
        await backend.put(build, [stored("/a", 1.0, ("t",)), stored("/b", 1.0)])
        await backend.mark_tag(build, "t", 5.0)
        await backend.put_static_paths(build, "/p", ["/a"])
    held = await backend.acquire_lease("old", "/a", 30)
    assert held is not None
    assert await backend.drop_builds(["new"]) == 2
    assert await backend.get("old", "/a") is None and await backend.get("old", "/b") is None
    assert await backend.tag_marks("old") == {} and await backend.get_static_paths("old", "/p") is None
    assert await backend.mark_tag("old", "t", 9.0) == []
    assert await backend.acquire_lease("old", "/a", 30) is not None  # its leases went too
    assert await backend.get("new", "/a") is not None and await backend.tag_marks("new") == {"t": 5.0}
    assert await backend.get_static_paths("new", "/p") == ["/a"]
    assert await backend.drop_builds(["new"]) == 0


async def test_usage_counts_the_records_of_the_build(backend: Backend) -> None:
    await backend.put("b1", [stored(f"/p/{n}", raw=b"x" * 1000) for n in range(5)])
    await backend.put("b2", [stored("/other")])
    records, size = await backend.usage("b1")
    assert records == 5 and size > 5000


async def test_touch_accepts_held_missing_and_no_paths(backend: Backend) -> None:
    await backend.put("b1", [stored("/a")])
    await backend.touch("b1", ["/a", "/never-stored"])
    await backend.touch("b1", [])
    assert await backend.get("b1", "/a") == b"raw"


async def test_every_server_reads_the_counters_every_server_reported(backends: Backends) -> None:
    one, other = backends.open(), backends.open()
    await one.report("a:101", {"instance": "a", "hit": 3})
    await other.report("b:202", {"instance": "b", "hit": 5})
    await one.report("a:101", {"instance": "a", "hit": 4})  # the last report of a server replaces its previous one
    assert await other.reports() == {"a:101": {"instance": "a", "hit": 4}, "b:202": {"instance": "b", "hit": 5}}
