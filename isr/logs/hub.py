"""Where records go: live subscribers at once, the disk store within a second, the stats."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from isr.logs.record import Filter, LogRecord
from isr.logs.stats import Stats
from isr.logs.store import LogStore

log = logging.getLogger("isr")

FLUSH_INTERVAL_S = 0.5
RECENT_IN_MEMORY = 500  # for the dashboard's first paint
SUBSCRIBER_QUEUE = 1000  # records a slow SSE client may lag behind before it misses some


class LogHub:
    def __init__(self, store: LogStore, stats: Stats) -> None:
        self.store = store
        self.stats = stats
        self.recent: deque[LogRecord] = deque(maxlen=RECENT_IN_MEMORY)
        self._pending: list[LogRecord] = []
        self._subscribers: set[asyncio.Queue[LogRecord | None]] = set()

    def publish(self, record: LogRecord) -> None:
        self.stats.observe(record)
        self.recent.append(record)
        self._pending.append(record)
        for queue in self._subscribers:
            if queue.qsize() < SUBSCRIBER_QUEUE:
                queue.put_nowait(record)

    def subscribe(self) -> asyncio.Queue[LogRecord | None]:
        """A queue of every record from now on; None means the stream ends (shutdown)."""
        queue: asyncio.Queue[LogRecord | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LogRecord | None]) -> None:
        self._subscribers.discard(queue)

    def end_streams(self) -> None:
        for queue in self._subscribers:
            queue.put_nowait(None)

    async def read(self, keep: Filter) -> list[LogRecord]:
        """What the store holds plus what is not flushed yet."""
        pending = [r for r in self._pending if keep(r)]
        return await asyncio.to_thread(self.store.read, keep) + pending

    async def run(self) -> None:
        """Write pending records to disk every half second, until cancelled. The stats are
        sampled first thing: their first sample starts the series, and requests counted
        before it would never reach a bucket."""
        try:
            while True:
                self.stats.sample(time.time())
                await asyncio.sleep(FLUSH_INTERVAL_S)
                await self.flush()
        finally:
            await asyncio.shield(self.flush())

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                await asyncio.to_thread(self.store.append, batch)
            except Exception:  # a full disk must not take the server down
                log.exception("cannot write %d log records", len(batch))
