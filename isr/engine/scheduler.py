"""The regeneration scheduler: one generation per path at a time, anywhere.

In this process, concurrent callers for a path share one task; across processes
and instances, a lease in the shared cache lets one of them regenerate while the
others serve what they have (or, with nothing to serve, wait for its result).
Failures back off from 1 s doubling to 10 s, per path; a success resets it.

A lease is short and renewed while its generation waits for a worker and runs, so
a long queue never lets it lapse under a live holder, and a dead holder's lapses in
seconds. A process waiting for another's generation is woken by the backend when it
can be (Redis pub/sub), else it looks every 50 ms. Writes are fenced besides (see the
backend): a holder whose lease lapsed anyway can never replace a generation that
started after its own.

An on-demand revalidation is never folded into a generation that started before
it (that one may have read the old data): it queues one follow-up generation after
it, which every revalidation arriving meanwhile shares.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from isr.cache.record import Record
from isr.cache.store import RecordStore
from isr.engine.freshness import backoff_delay
from isr.errors import FunctionError

log = logging.getLogger("isr")

Job = Callable[[], Awaitable[tuple[Record, bytes]]]
LEASE_TTL_S = 10.0  # a lease lapses this long after its holder last renewed it (a crashed holder)
LEASE_MARGIN_S = 30.0  # a waiter gives up on another process's generation after maxDuration + this
LEASE_POLL_S = 0.05
TRACKED_PATHS = 10_000  # per-path back-off and elsewhere entries before expired ones are pruned
FORGET_FAILURE_S = 60.0  # a failed path nobody asked for since is forgotten (its back-off restarts)


class Scheduler:
    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self._running: dict[str, asyncio.Task[Record | None]] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # path -> (count, retry at, monotonic)
        self._follow_ups: dict[str, asyncio.Task[Record]] = {}
        self._elsewhere: dict[str, float] = {}  # path -> until when another process regenerates it

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def may_refresh(self, path: str) -> bool:
        """Nothing regenerates the path now here or elsewhere, and it is not backing off."""
        return path not in self._running and not self.backing_off(path) and time.monotonic() >= self._elsewhere.get(path, 0.0)

    def backing_off(self, path: str) -> bool:
        failure = self._failures.get(path)
        return failure is not None and time.monotonic() < failure[1]

    async def generate(self, path: str, job: Job, max_duration: float) -> Record:
        """Join the running generation of a path, or run one; raises its FunctionError."""
        task = self._running.get(path) or self._start(path, job, max_duration, wait=True)
        record = await asyncio.shield(task)
        if record is None:  # joined a background refresh that found the lease taken
            return await self.generate(path, job, max_duration)
        return record

    async def revalidate(self, path: str, job: Job, max_duration: float) -> Record:
        """Generate a path from data at least as new as this call; raises its FunctionError."""
        follow_up = self._follow_ups.get(path)
        if follow_up is None:
            running = self._running.get(path)
            if running is None:
                running = self._start(path, job, max_duration, wait=True, exclusive=True)
                return await self._result(running)
            follow_up = asyncio.create_task(self._follow(running, path, job, max_duration))
            self._follow_ups[path] = follow_up
        return await asyncio.shield(follow_up)

    async def _follow(self, previous: asyncio.Task[Record | None], path: str, job: Job, max_duration: float) -> Record:
        await asyncio.wait([previous])
        del self._follow_ups[path]  # revalidations from now on queue behind this one
        started_since = self._running.get(path)  # began after this revalidation: fresh enough
        if started_since is not None and (record := await asyncio.shield(started_since)) is not None:
            return record
        return await self._result(self._start(path, job, max_duration, wait=True, exclusive=True))

    async def _result(self, task: asyncio.Task[Record | None]) -> Record:
        record = await asyncio.shield(task)
        assert record is not None  # exclusive runs always generate
        return record

    def refresh(self, path: str, job: Job, max_duration: float) -> bool:
        """Regenerate in the background unless one runs here or the path backs off; True if started."""
        if not self.may_refresh(path):
            return False
        self._start(path, job, max_duration, wait=False)
        return True

    def _start(self, path: str, job: Job, max_duration: float, wait: bool, exclusive: bool = False) -> asyncio.Task[Record | None]:
        self._prune()
        task = asyncio.create_task(self._run(path, job, max_duration, wait, exclusive))
        self._running[path] = task
        task.add_done_callback(lambda t: self._finished(path, t, background=not wait))
        return task

    def _finished(self, path: str, task: asyncio.Task[Record | None], background: bool) -> None:
        """Forget the task; a background one has nobody awaiting it, so report its failure here."""
        if self._running.get(path) is task:
            del self._running[path]
        if task.cancelled() or not background:
            return
        error = task.exception()
        if isinstance(error, FunctionError):
            log.warning("generation of %s failed: %s %s\n%s", path, error.code, error, error.detail)
        elif error is not None:
            log.error("generation of %s crashed", path, exc_info=error)

    async def _run(self, path: str, job: Job, max_duration: float, wait: bool, exclusive: bool) -> Record | None:
        started = time.time()
        patience = max_duration + LEASE_MARGIN_S
        token = await self.store.acquire_lease(path, LEASE_TTL_S)
        if token is None and exclusive:
            token = await self._wait_for_lease(path, patience)  # theirs may have read older data
        elif token is None:
            if not wait:
                self._elsewhere[path] = time.monotonic() + LEASE_POLL_S * 10
                return None  # another process regenerates it
            outcome = await self._wait_for_other(path, started, patience)
            if isinstance(outcome, Record):
                return outcome
            token = outcome
        renewing = asyncio.create_task(self._renew(path, token)) if token is not None else None
        try:
            if not exclusive and (fresh := await self._stored_fresh(path)) is not None:
                return fresh  # another process regenerated it while this one held the stale copy
            record, raw = await job()
            record = await self.store.save(record, raw)
        except Exception:  # the function failed, or the cache could not store its result
            count = self._failures.get(path, (0, 0.0))[0] + 1
            self._failures[path] = (count, time.monotonic() + backoff_delay(count))
            raise
        finally:
            if renewing is not None:
                renewing.cancel()
            if token is not None:
                await asyncio.shield(self._release(path, token))
        self._failures.pop(path, None)
        return record

    async def _renew(self, path: str, token: str) -> None:
        """Keep the lease while the generation lasts (until cancelled)."""
        while True:
            await asyncio.sleep(LEASE_TTL_S / 3)
            try:
                if not await self.store.renew_lease(path, token, LEASE_TTL_S):
                    log.warning("the lease of %s lapsed during its generation; its write is fenced", path)
                    return
            except Exception:
                log.exception("cannot renew the lease of %s", path)

    async def _release(self, path: str, token: str) -> None:
        """Give the lease back; a failure here is logged, never raised over the generation's own outcome
        (the lease lapses by itself)."""
        try:
            await self.store.release_lease(path, token)
        except Exception:
            log.exception("cannot release the lease of %s", path)

    def _prune(self) -> None:
        """Keep per-path bookkeeping bounded under any number of distinct paths (crawlers)."""
        now = time.monotonic()
        if len(self._elsewhere) > TRACKED_PATHS:
            self._elsewhere = {path: until for path, until in self._elsewhere.items() if until > now}
        if len(self._failures) > TRACKED_PATHS:
            self._failures = {path: f for path, f in self._failures.items() if f[1] > now - FORGET_FAILURE_S}

    async def _stored_fresh(self, path: str) -> Record | None:
        """The stored generation of a path, if it is fresh (read under the lease)."""
        record = await self.store.reread(path)
        return record if record is not None and time.time() < record.stale_at else None

    async def _wait_for_other(self, path: str, started: float, patience: float) -> Record | str | None:
        """Wait for another process's generation: its record, or the lease once it lets go."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            await self.store.changed(LEASE_POLL_S)  # Redis: woken by the other's write or release
            record = await self.store.reread(path)
            if record is not None and record.generated_at > started:
                return record
            token = await self.store.acquire_lease(path, LEASE_TTL_S)
            if token is not None:
                return token  # it failed or died: generate here
        return None

    async def _wait_for_lease(self, path: str, patience: float) -> str | None:
        """Take the lease once another process's generation ends (or its lease lapses)."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            await self.store.changed(LEASE_POLL_S)
            token = await self.store.acquire_lease(path, LEASE_TTL_S)
            if token is not None:
                return token
        return None

    async def drain(self) -> None:
        """Wait for every running generation (at shutdown and at the end of a build)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
