"""The regeneration scheduler: single flight per path, back-off after failures."""

import asyncio
import time
from pathlib import Path

import pytest

from isr.cache.record import Record
from isr.cache.store import RecordStore
from isr.engine.freshness import backoff_delay
from isr.engine.scheduler import Scheduler
from isr.errors import CacheError, FunctionFailed

from cache_support import backend, memory, record


def store(tmp_path: Path) -> RecordStore:
    return RecordStore(backend(tmp_path), "b1", memory())


class Job:
    def __init__(self, fail: bool = False, delay: float = 0.05) -> None:
        self.calls = 0
        self.fail = fail
        self.delay = delay

    async def __call__(self) -> tuple[Record, bytes]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise FunctionFailed("boom")
        rec = record("/p", f"g{self.calls}")
        return rec, rec.to_bytes()


async def test_concurrent_generations_share_one_run(tmp_path: Path) -> None:
    scheduler, job = Scheduler(store(tmp_path)), Job()
    records = await asyncio.gather(*(scheduler.generate("/p", job, 5) for _ in range(50)))
    assert job.calls == 1 and {r.generation for r in records} == {"g1"}


async def test_refresh_runs_once_while_running(tmp_path: Path) -> None:
    scheduler, job = Scheduler(store(tmp_path)), Job(delay=0.2)
    for _ in range(20):
        scheduler.refresh("/p", job, 5)
    await scheduler.drain()
    assert job.calls == 1
    assert (await scheduler.store.load("/p")) is not None


async def test_failure_backs_off_then_retries(tmp_path: Path) -> None:
    scheduler, job = Scheduler(store(tmp_path)), Job(fail=True, delay=0)
    with pytest.raises(FunctionFailed):
        await scheduler.generate("/p", job, 5)
    assert scheduler.backing_off("/p")
    scheduler.refresh("/p", job, 5)  # ignored during back-off
    await scheduler.drain()
    assert job.calls == 1


def test_backoff_doubles_to_ten_seconds() -> None:
    assert [backoff_delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


class Versioned(Job):
    """A slow job that reads the data version when it starts, like a page reading its CMS."""

    def __init__(self) -> None:
        super().__init__(delay=0.2)
        self.data = 0
        self.read: list[int] = []

    async def __call__(self) -> tuple[Record, bytes]:
        self.read.append(self.data)
        return await super().__call__()


async def test_revalidation_during_a_run_queues_one_follow_up(tmp_path: Path) -> None:
    scheduler, job = Scheduler(store(tmp_path)), Versioned()
    scheduler.refresh("/p", job, 5)  # a background run starts with data 0
    deadline = time.monotonic() + 10
    while not job.read:  # it has read the data (a lease first: a loaded machine takes a while)
        assert time.monotonic() < deadline, "the background run never started"
        await asyncio.sleep(0.005)
    job.data = 1  # the data changes, then revalidations arrive while the run is going
    records = await asyncio.gather(*(scheduler.revalidate("/p", job, 5) for _ in range(10)))
    assert job.read == [0, 1]  # one follow-up for all ten, and it saw the new data
    assert {r.generation for r in records} == {"g2"}
    assert (await scheduler.store.load("/p")).generation == "g2"  # type: ignore[union-attr]


async def test_revalidation_ignores_back_off(tmp_path: Path) -> None:
    scheduler, job = Scheduler(store(tmp_path)), Job(fail=True, delay=0)
    with pytest.raises(FunctionFailed):
        await scheduler.generate("/p", job, 5)
    job.fail = False
    assert (await scheduler.revalidate("/p", job, 5)).generation == "g2"
    assert not scheduler.backing_off("/p")


class BrokenStore(RecordStore):
    """A cache that cannot write (disk full, database locked) nor give leases back."""

    async def save(self, record: Record, raw: bytes) -> Record:
        raise CacheError("disk full")

    async def release_lease(self, path: str, token: str) -> None:
        raise CacheError("database is locked")


async def test_a_failed_cache_write_backs_off_and_keeps_its_own_error(tmp_path: Path) -> None:
    scheduler, job = Scheduler(BrokenStore(backend(tmp_path), "b1", memory())), Job(delay=0)
    with pytest.raises(CacheError, match="disk full"):  # not the release's "database is locked"
        await scheduler.generate("/p", job, 5)
    assert scheduler.backing_off("/p")
    for _ in range(5):
        scheduler.refresh("/p", job, 5)  # STALE requests meanwhile run nothing
    await scheduler.drain()
    assert job.calls == 1


async def test_bookkeeping_of_many_paths_is_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("isr.engine.scheduler.TRACKED_PATHS", 10)
    monkeypatch.setattr("isr.engine.scheduler.FORGET_FAILURE_S", 0.0)
    monkeypatch.setattr("isr.engine.scheduler.backoff_delay", lambda failures: 0.0)
    scheduler, job = Scheduler(store(tmp_path)), Job(fail=True, delay=0)
    for n in range(50):
        with pytest.raises(FunctionFailed):
            await scheduler.generate(f"/junk/{n}", job, 5)
    assert len(scheduler._failures) <= 11


async def test_a_lease_is_renewed_while_its_generation_lasts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generation longer than the lease (a long queue for a worker) keeps it: no second
    process regenerates the path meanwhile."""
    monkeypatch.setattr("isr.engine.scheduler.LEASE_TTL_S", 0.3)
    scheduler, job = Scheduler(store(tmp_path)), Job(delay=1.2)
    other = store(tmp_path)  # another process on the same cache
    running = asyncio.create_task(scheduler.generate("/p", job, 5))
    for _ in range(10):
        await asyncio.sleep(0.1)
        assert await other.acquire_lease("/p", 0.3) is None
    await running
    assert await other.acquire_lease("/p", 0.3) is not None  # released at the end
