"""Records of one build: the in-process LRU in front of a backend.

A path missing from memory is read once however many requests wait for it, off the
event loop. Other processes' writes reach memory through the backend's change log,
path by path: a newer generation elsewhere drops this process's copy (the next request
reads it from the backend), a tag mark marks the copies carrying the tag stale. A
burst of writes costs what it changed, never a reload of everything held.

A shared backend that does not answer (CacheUnavailable: Redis down or slow) degrades
instead of failing a request: a read is a miss, a lease is this process's alone, and a
generation is kept in memory only; the backend logs the outage once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from isr.cache.backend import Backend, Change, Stored
from isr.cache.layout import Served
from isr.cache.memory import MemoryCache
from isr.cache.record import Record
from isr.cache.spill import ResponseKey, decode
from isr.cache.threads import RunningLoop
from isr.errors import CacheError, CacheUnavailable

log = logging.getLogger("isr")

_NOTHING = object()  # nothing learned
LOCAL_LEASE = "local"  # the lease taken while the shared backend does not answer
ANNOUNCE_EVERY_S = 5.0  # how often a server tells the cache its build is in use and counts it


class RecordStore:
    def __init__(self, backend: Backend, build_id: str, memory: MemoryCache) -> None:
        self.backend = backend
        self.build_id = build_id
        self.memory = memory
        self._seq: int | None = None  # the backend's change counter when last synced
        self._marks: dict[str, float] | None = None  # tag -> when last revalidated
        self._reading: dict[str, asyncio.Future[Record | None]] = {}
        self._waiters: dict[str, int] = {}  # path -> askers waiting for its read but the first
        self._changed_while_read: set[str] = set()  # paths a change reached while a read of them ran
        self._spill_reads: dict[str, int] = {}  # path -> reads of its responses under way (_read_served)
        # path -> the generation learned of during such a read (None: unknown, after falling behind)
        self._changed_while_spilling: dict[str, str | None] = {}
        self.usage = (0, 0)  # records of this build in the whole cache, bytes the cache takes
        self.counters: Callable[[], dict[str, Any]] | None = None  # this process's, shared with announce
        self._loop = RunningLoop()

    async def load(self, path: str) -> Record | None:
        """The record of a path: from memory, else read from the backend (once for all waiters)."""
        record = self.memory.get(path)
        if record is not None:
            return record
        reading = self._reading.get(path)
        if reading is not None:
            return await self._wait(path, reading)
        # The first asker reads inline, with no task of its own: a page read from disk is the
        # common case under load, and another request for it while it is read the rare one.
        reading = self._reading[path] = self._loop().create_future()
        try:
            record = await self._load(path)
        except asyncio.CancelledError:
            if self._waiters.get(path):
                self._hand_over(path, reading)
            else:
                del self._reading[path]
                reading.cancel()
            raise
        except BaseException as exc:
            del self._reading[path]
            reading.set_exception(exc)
            reading.exception()  # retrieved: nobody else may be waiting
            raise
        del self._reading[path]
        reading.set_result(record)
        return record

    async def _wait(self, path: str, reading: asyncio.Future[Record | None]) -> Record | None:
        """Wait for a read another asker started; one that goes away leaves it to the others."""
        self._waiters[path] = self._waiters.get(path, 0) + 1
        try:
            return await asyncio.shield(reading)
        finally:
            self._waiters[path] -= 1
            if not self._waiters[path]:
                del self._waiters[path]

    def _hand_over(self, path: str, reading: asyncio.Future[Record | None]) -> None:
        """The first asker went away (a dropped client): the read goes on for the others."""
        task = self._reading[path] = asyncio.ensure_future(self._load(path))
        task.add_done_callback(lambda _: self._reading.pop(path, None))
        task.add_done_callback(lambda _: _pass_on(task, reading))

    async def _load(self, path: str) -> Record | None:
        self._changed_while_read.discard(path)
        record = await self._read(path)
        while path in self._changed_while_read:  # another process wrote it after our read began
            self._changed_while_read.discard(path)
            record = await self._read(path)
        if record is None or not self.memory.admits(record):
            return record  # served but not kept: see MemoryCache.admits
        self.memory.put(record)  # the backend counts its own reads as uses
        return self.memory.get(path)  # the read's asker is served it: a use

    async def served(self, path: str, variant: str, coding: str) -> Served | None:
        """A fresh page's response (variant "html" or "data") in a coding, read as stored, for
        a page memory would not keep: the read moves one response, and nothing is decoded
        (layout.py); read again from where the backend spilled it, if it did (spill.py).
        None where the engine decides instead: memory would keep the page, none is stored,
        it is stale (by time or a tag revalidation), or the backend fails (the engine's read
        says how)."""
        if self.memory.wants(path):
            return None
        key = (path, variant, coding)
        try:
            response = self._spilled(key) or await self._read_served(key)
            if response is None:
                return None
            marks = self._marks if self._marks is not None else await self._tag_marks()
        except CacheError:
            return None
        return self._fresh(path, response, marks)

    def spilled(self, path: str, variant: str, coding: str) -> Served | None:
        """What `served` answers, if it can be answered at once: read back from the spill on
        the event loop, with no wait (None: ask `served`)."""
        if self._marks is None or self.memory.wants(path):
            return None
        response = self._spilled((path, variant, coding))
        return None if response is None else self._fresh(path, response, self._marks)

    def _fresh(self, path: str, response: Served, marks: dict[str, float]) -> Served | None:
        """The response if it is fresh (by time and tag marks), counted toward admission."""
        if time.time() >= response.stale_at or _marked(response.tags, response.started_at, marks):
            return None
        self.memory.refused(path)
        return response

    def _spilled(self, key: ResponseKey) -> Served | None:
        """A response read back where the backend spilled it, on the loop: None if it is not
        in the page cache (it never waits for the disk) or was not spilled."""
        spill = self.backend.spill
        if spill is None:
            return None
        location = self.memory.spilled(key)
        if location is None:
            return None
        raw = spill.read(location)
        return None if raw is None else decode(raw, key)

    async def _read_served(self, key: ResponseKey) -> Served | None:
        """A response read by the backend; where it spilled it is kept, unless another
        generation of the page was learned of during the read (it may be of an older one)."""
        path = key[0]
        self._spill_reads[path] = self._spill_reads.get(path, 0) + 1
        try:
            response = await self.backend.get_served(self.build_id, *key)
        finally:
            left = self._spill_reads.pop(path) - 1
            learned = self._changed_while_spilling.get(path, _NOTHING)
            if left:
                self._spill_reads[path] = left
            else:
                self._changed_while_spilling.pop(path, None)
        if response is not None and response.spilled is not None and learned in (_NOTHING, response.generation):
            self.memory.spill(key, response.spilled, response.generation)
        return response

    def _unspill(self, path: str, current: str | None) -> None:
        """Generation `current` of a path is the one stored now (None: not known): the
        page's spilled responses of others go, and so does what a read under way returns of them."""
        self.memory.unspill(path, current)
        if path in self._spill_reads:
            self._changed_while_spilling[path] = current

    async def reread(self, path: str) -> Record | None:
        """The backend's record of a path, which replaces the memory copy."""
        record = await self._read(path)
        if record is not None:
            self._unspill(path, record.generation)
            self.memory.put(record, newer_only=False)
            record = self.memory.peek(path)
        return record

    async def _read(self, path: str) -> Record | None:
        try:
            raw = await self.backend.get(self.build_id, path)
            if raw is None:
                return None
            marks = await self._tag_marks()
        except CacheUnavailable:
            return None  # rendered here, like a new path
        try:
            record = Record.from_bytes(raw)
        except CacheError as exc:  # another isr's layout (a shared Redis), or damage
            log.warning("cache: the record of %s is unreadable (%s): it is rendered again", path, exc)
            return None
        self._apply_marks(record, marks)
        return record

    async def save(self, record: Record, raw: bytes) -> Record:
        """Store a record; `raw` is its to_bytes(), made once where it was generated.

        The write is fenced: if a generation that started later is stored already (another
        process's, after a newer revalidation), that one stays and is returned instead.
        """
        try:
            self._apply_marks(record, await self._tag_marks())
            (stored,) = await self.backend.put(self.build_id, [as_stored(record, raw)])
        except CacheUnavailable:
            stored = True  # served from memory here until the backend answers again
        if not stored:
            return await self.reread(record.path) or record
        self._unspill(record.path, record.generation)
        self.memory.put(record)
        return self.memory.peek(record.path) or record

    async def save_all(self, records: list[Stored]) -> None:
        """Store many records in one write (a build), without keeping them in memory."""
        await self.backend.put(self.build_id, records)

    async def static_paths(self, page: str) -> list[str] | None:
        """The paths `get_static_paths` returned for a route, as stored for this build
        (None while the shared backend does not answer: the caller asks the page)."""
        try:
            return await self.backend.get_static_paths(self.build_id, page)
        except CacheUnavailable:
            return None

    async def put_static_paths(self, page: str, paths: list[str]) -> None:
        try:
            await self.backend.put_static_paths(self.build_id, page, paths)
        except CacheUnavailable:
            pass  # the caller keeps them; the next process to ask stores them

    async def revalidate_tag(self, tag: str) -> list[str]:
        """Mark every generation carrying the tag stale, here and for every process; the
        stored paths it marked. Costs one indexed query, whatever the number of paths."""
        at = time.time()
        paths = await self.backend.mark_tag(self.build_id, tag, at)
        self._mark(tag, at, await self._tag_marks())
        return paths

    async def _tag_marks(self) -> dict[str, float]:
        if self._marks is None:
            self._marks = await self.backend.tag_marks(self.build_id)
        return self._marks

    def _mark(self, tag: str, at: float, marks: dict[str, float]) -> None:
        marks[tag] = max(marks.get(tag, 0.0), at)
        for record in self.memory.with_tag(tag):
            if record.started_at <= at:
                record.expire()

    @staticmethod
    def _apply_marks(record: Record, marks: dict[str, float]) -> None:
        """A generation that started before a revalidation of one of its tags is stale."""
        if _marked(record.tags, record.started_at, marks):
            record.expire()

    async def follow(self, interval: float, instance: str) -> None:
        """Keep memory in step with other processes' writes, tell the backend which records
        were served, that this build is in use and this process's counters (until cancelled)."""
        announced = 0.0
        while True:
            try:
                await self.sync()
                await self.flush_touches()
                if time.monotonic() - announced >= ANNOUNCE_EVERY_S:
                    await self.backend.announce(self.build_id, instance)
                    if self.counters is not None:
                        await self.backend.report(server_name(instance), self.counters())
                    await self.count_usage()
                    announced = time.monotonic()
            except CacheUnavailable:
                pass  # the backend logged the outage once; sync() resynchronises when it ends
            except Exception:  # a bad moment of the disk must not end the following for good
                log.exception("cannot follow the cache's change log")
            await self.changed(interval)

    async def servers(self, instance: str) -> dict[str, dict[str, Any]]:
        """Every live server process's counters by server name, this one's as of now (only this
        one's while the shared cache does not answer)."""
        try:
            rows = await self.backend.reports()
        except CacheUnavailable:
            rows = {}
        if self.counters is not None:
            rows[server_name(instance)] = self.counters()
        return rows

    async def changed(self, poll: float) -> None:
        """Wait until another process may have written (see Backend.changed)."""
        try:
            await self.backend.changed(self.build_id, poll)
        except CacheUnavailable:
            await asyncio.sleep(poll)

    async def count_usage(self) -> None:
        """Refresh `usage`: this build's records in the whole cache and the bytes it takes
        (kept as last counted while the shared backend does not answer)."""
        try:
            self.usage = await self.backend.usage(self.build_id)
        except CacheUnavailable:
            pass

    async def flush_touches(self) -> None:
        touched, self.memory.touched = self.memory.touched, set()
        await self.backend.touch(self.build_id, touched)

    async def sync(self) -> None:
        """Apply what other processes wrote since the last call. The first call only counts, and
        reads the tag marks again for what was read before it: on a busy machine the following
        starts late, after requests read records (and the marks) that a tag mark has since made
        stale. Kept from before, those marks made the new one be missed for good."""
        since = self._seq
        seq, changes = await self.backend.changes(self.build_id, -1 if since is None else since)
        if since is None:
            self._marks = None
            marks = await self._tag_marks()
            for tag, at in marks.items():
                self._mark(tag, at, marks)
        elif changes is None:
            log.warning("fell behind the cache's change log: dropping the %d records held in memory", len(self.memory))
            self.memory.clear()
            self._changed_while_spilling.update(dict.fromkeys(self._spill_reads))
            self._marks = None
        else:
            marks = await self._tag_marks()
            for change in changes:
                self._apply(change, marks)
        self._seq = seq

    def _apply(self, change: Change, marks: dict[str, float]) -> None:
        if change.kind == "tag":
            assert isinstance(change.value, float)
            self._mark(change.key, change.value, marks)
            return
        if change.key in self._reading:
            self._changed_while_read.add(change.key)
        assert isinstance(change.value, str)
        self._unspill(change.key, change.value)
        held = self.memory.peek(change.key)
        if held is not None and held.generation != change.value:
            self.memory.drop(change.key)  # the next request reads the newer generation

    async def acquire_lease(self, path: str, ttl: float) -> str | None:
        try:
            return await self.backend.acquire_lease(self.build_id, path, ttl)
        except CacheUnavailable:
            return LOCAL_LEASE  # the scheduler still runs one generation per path in this process

    async def renew_lease(self, path: str, token: str, ttl: float) -> bool:
        if token == LOCAL_LEASE:
            return True
        try:
            return await self.backend.renew_lease(self.build_id, path, token, ttl)
        except CacheUnavailable:
            return True  # it lapses by itself if Redis comes back without us; the write is fenced

    async def release_lease(self, path: str, token: str) -> None:
        if token == LOCAL_LEASE:
            return
        try:
            await self.backend.release_lease(self.build_id, path, token)
        except CacheUnavailable:
            pass  # it lapses by itself


def as_stored(record: Record, raw: bytes) -> Stored:
    """What a backend stores of a record: its bytes and the fields it indexes."""
    return Stored(record.path, record.generation, record.started_at, record.tags, raw)


def _marked(tags: Iterable[str], started_at: float, marks: dict[str, float]) -> bool:
    """Whether a generation started before a revalidation of one of its tags."""
    for tag in tags:  # noqa: SIM110 - a loop: any() with a generator took 2.5 times as long (260 against 104 ns)
        if marks.get(tag, 0.0) >= started_at:
            return True
    return False


def server_name(instance: str) -> str:
    """One server process of an instance (an instance may run several: --workers)."""
    return f"{instance}:{os.getpid()}"


def _pass_on(source: asyncio.Future[Record | None], target: asyncio.Future[Record | None]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif (exc := source.exception()) is not None:
        target.set_exception(exc)
        target.exception()  # retrieved: the waiters may all have gone meanwhile
    else:
        target.set_result(source.result())
