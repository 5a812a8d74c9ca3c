"""The default backend: one SQLite database (WAL mode) in the site's cache/ folder.

Why SQLite of our own schema rather than diskcache's key-value table: the cache needs
least-recently-used eviction of records only (never leases, tag marks or static
paths), a row per (tag, path) so that a write costs O(tags of the page) and a tag
revalidation one indexed query, and a fenced write in the same transaction as its tag
rows. diskcache evicts across all its keys and takes a write lock for every read inside
`transact()`; under load those reads queued on SQLite's busy handler for up to 1.6 s.

Reads never lock here (WAL: readers see the last committed snapshot) and never run on
the event loop: record reads go to a read process of their own (reader.py says why), the
few others to a small thread pool. Each reader keeps its own connection with a small page
cache and no mmap, so the server's resident memory stays what it holds in its own LRU. Writes go through one writer thread per process; SQLite serialises the
writers of several processes. Every value stays inside SQLite, so a kill -9 mid-write
rolls back to the previous record.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import monotonic, sleep  # not through `time`, which tests replace with a fake clock
from typing import Any, TypeVar, cast

import orjson

from isr.cache.backend import Change, Health, Stored
from isr.cache.layout import Served
from isr.cache.read_process import PAGE_CACHE_KB
from isr.cache.reader import RecordReader
from isr.cache.spill import open_spill
from isr.cache.threads import Batches, Threads
from isr.constants import USE_STAMP_EVERY_S
from isr.errors import CacheError

log = logging.getLogger("isr")

T = TypeVar("T")

# The schema's version is in the file's name: an isr of another version (a server not yet
# restarted after an upgrade) keeps its own file instead of finding tables it does not know.
DATABASE = "isr-cache-3.sqlite3"  # 3: records laid out with their heads (layout.py)
OLDER_DATABASES = ("isr-cache.sqlite3", "isr-cache-2.sqlite3")  # left to the operator to delete (an older server may still use one)
READ_THREADS = 2  # reads other than records' (change log, tag marks, usage) off the event loop
# Record reads in flight at once (Batches): the reads asked meanwhile wait and go in one
# query. Two let the read process read a batch while the loop sends the last one's pages:
# 20,000 pages at --cache-memory 32mb, read as responses (store.served), uniform 9,500 to
# 11,900 HITs a second against one at once; four gave no more.
RECORD_READS_AT_ONCE = 2
# Each of a server process's two spill files (spill.py) takes at most this part of the disk bound.
SPILL_FILES_SHARE = 8
# The database's pages may take this share of the disk bound; the write-ahead log takes
# the rest (checkpointed at a sixteenth, truncated to an eighth). Past it, records are
# evicted down to EVICT_TO.
DATA_SHARE = 0.8
EVICT_TO = 0.7
EVICT_BATCH = 64  # records deleted per eviction step
TOUCH_CHUNK = 4096  # use stamps written per statement (DiskBackend._touch)
CHANGES_KEPT_S = 600.0  # how long other processes can fall behind before they resync
PRUNE_EVERY = 256  # writes between two prunings of the change log
SERVER_SEEN_S = 30.0
OPEN_TIMEOUT_S = 30.0  # SQLite's busy timeout, and how long opening waits out other openers
OPEN_RETRY_S = 0.05  # a server that announced itself this recently is alive

# A record's use stamp sits in a table of its own: renewing it rewrites a small row, not
# the record's overflow pages; and `raw` comes last in its row, so reading the columns
# before it does not walk the blob.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    build TEXT NOT NULL, path TEXT NOT NULL, generation TEXT NOT NULL, started REAL NOT NULL,
    tags TEXT NOT NULL, raw BLOB NOT NULL, PRIMARY KEY (build, path));
CREATE TABLE IF NOT EXISTS uses (
    build TEXT NOT NULL, path TEXT NOT NULL, used REAL NOT NULL, PRIMARY KEY (build, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uses_by_time ON uses (used);
CREATE TABLE IF NOT EXISTS tags (
    build TEXT NOT NULL, tag TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (build, tag, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tag_marks (
    build TEXT NOT NULL, tag TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (build, tag)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    build TEXT NOT NULL, path TEXT NOT NULL, token TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (build, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS static_paths (
    build TEXT NOT NULL, page TEXT NOT NULL, paths BLOB NOT NULL, PRIMARY KEY (build, page)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, build TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_build ON changes (build, seq);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS servers (
    instance TEXT PRIMARY KEY, build TEXT NOT NULL, seen REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reports (server TEXT PRIMARY KEY, seen REAL NOT NULL, counters BLOB NOT NULL) WITHOUT ROWID;
"""
_BUILD_TABLES = ("records", "uses", "tags", "tag_marks", "leases", "static_paths", "changes")


class DiskBackend:
    def __init__(self, directory: str | Path, size_limit: int) -> None:
        self.size_limit = size_limit
        self.health = Health()  # SQLite on a local disk: its failures are errors, not outages
        self._file = Path(directory) / DATABASE
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writes = 0
        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self._create_schema()
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot open cache folder {directory}: {exc}") from None
        older = [name for name in OLDER_DATABASES if (Path(directory) / name).exists()]
        if older:
            log.warning("cache: %s in %s is an older isr's cache, no longer used: delete it once no older server runs", older[0], directory)
        self._readers = Threads(READ_THREADS, "isr-cache-read")  # once the cache opened: nothing to stop otherwise
        self._writer = Threads(1, "isr-cache-write")
        self.spill = open_spill(Path(directory), size_limit // SPILL_FILES_SHARE)
        self._reader = RecordReader(self._file, USE_STAMP_EVERY_S, self.spill)
        self._records = Batches(self._reader.fetch, RECORD_READS_AT_ONCE)

    # -- threads and connections ------------------------------------------------------

    def _create_schema(self) -> None:
        """Create the tables (in one write transaction), waiting out another process doing the
        same: SQLite answers some lock conflicts at once, without its busy timeout (servers of
        `--workers N` opening a new cache together saw "database is locked" one start in ten)."""
        deadline = monotonic() + OPEN_TIMEOUT_S
        while True:
            try:
                self._connection().executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or monotonic() > deadline:
                    raise
                self._drop_connection()
                sleep(OPEN_RETRY_S)

    def _drop_connection(self) -> None:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            with self._lock:
                self._connections.remove(db)
            db.close()

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._file, timeout=OPEN_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            self._local.db = db  # before the pragmas: closed by _drop_connection if one fails
            with self._lock:
                self._connections.append(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: atomic and consistent; durable to the last checkpoint
            db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KB}")
            db.execute("PRAGMA mmap_size=0")
            db.execute(f"PRAGMA journal_size_limit={self.size_limit // 8}")
            db.execute(f"PRAGMA wal_autocheckpoint={max(min(self.size_limit // 16 // 4096, 1000), 8)}")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: a writer takes the write lock up front instead of failing to upgrade."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def _read(self, function: Callable[..., T], *args: Any) -> T:
        return await self._readers.run(function, *args)

    async def _write(self, function: Callable[..., T], *args: Any) -> T:
        return await self._writer.run(function, *args)

    # -- records ----------------------------------------------------------------------

    def get(self, build_id: str, path: str) -> asyncio.Future[bytes | None]:
        return cast("asyncio.Future[bytes | None]", self._records.get((build_id, path, None)))

    def get_served(self, build_id: str, path: str, variant: str, coding: str) -> asyncio.Future[Served | None]:
        return cast("asyncio.Future[Served | None]", self._records.get((build_id, path, (variant, coding))))

    async def put(self, build_id: str, records: list[Stored]) -> list[bool]:
        return await self._write(self._put, build_id, records)

    def _put(self, build_id: str, records: list[Stored]) -> list[bool]:
        now = time.time()
        with self._transaction() as db:
            stored = [self._put_one(db, build_id, record, now) for record in records]
            self._evict(db)
        self._writes += len(records)
        if self._writes >= PRUNE_EVERY:
            self._writes = 0
            self._prune_changes()
        return stored

    def _put_one(self, db: sqlite3.Connection, build_id: str, record: Stored, now: float) -> bool:
        old = db.execute("SELECT started, tags FROM records WHERE build=? AND path=?", (build_id, record.path)).fetchone()
        if old is not None and old[0] > record.started_at:
            return False  # fenced: a later generation (a newer revalidation) is already stored
        old_tags = set(orjson.loads(old[1])) if old is not None else set()
        db.executemany("DELETE FROM tags WHERE build=? AND tag=? AND path=?", [(build_id, t, record.path) for t in old_tags - set(record.tags)])
        db.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?, ?)", [(build_id, t, record.path) for t in set(record.tags) - old_tags])
        db.execute(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (build, path) DO UPDATE SET "
            "generation=excluded.generation, started=excluded.started, tags=excluded.tags, raw=excluded.raw",
            (build_id, record.path, record.generation, record.started_at, orjson.dumps(record.tags).decode(), record.raw),
        )
        db.execute("INSERT OR REPLACE INTO uses VALUES (?, ?, ?)", (build_id, record.path, now))
        self._log_change(db, build_id, "path", record.path, record.generation, now)
        return True

    def _log_change(self, db: sqlite3.Connection, build_id: str, kind: str, key: str, value: str, now: float) -> None:
        """Other processes read this log to drop or mark their copies (only what changed)."""
        db.execute("INSERT INTO changes (build, kind, key, value, at) VALUES (?, ?, ?, ?, ?)", (build_id, kind, key, value, now))

    def _evict(self, db: sqlite3.Connection) -> None:
        """Past the disk bound, delete the least recently used records (nothing else)."""
        if _used_bytes(db) <= self.size_limit * DATA_SHARE:
            return
        while _used_bytes(db) > self.size_limit * EVICT_TO:
            victims = db.execute(
                "SELECT u.build, u.path, r.tags FROM uses u JOIN records r ON r.build = u.build AND r.path = u.path "
                "ORDER BY u.used LIMIT ?", (EVICT_BATCH,),
            ).fetchall()
            if not victims:
                return
            keys = [(build, path) for build, path, _ in victims]
            db.executemany("DELETE FROM records WHERE build=? AND path=?", keys)
            db.executemany("DELETE FROM uses WHERE build=? AND path=?", keys)
            db.executemany(
                "DELETE FROM tags WHERE build=? AND tag=? AND path=?",
                [(build, tag, path) for build, path, tags in victims for tag in orjson.loads(tags)],
            )

    def _prune_changes(self) -> None:
        with self._transaction() as db:
            cutoff = time.time() - CHANGES_KEPT_S
            # In seq order from the oldest, stopping at the first change to keep: the rows
            # visited are the ones deleted (`at` has no index; max(seq) WHERE at < ? read them all).
            kept = db.execute("SELECT seq FROM changes WHERE at >= ? ORDER BY seq LIMIT 1", (cutoff,)).fetchone()
            last = kept[0] - 1 if kept else db.execute("SELECT max(seq) FROM changes").fetchone()[0]
            if last is not None and db.execute("DELETE FROM changes WHERE seq <= ?", (last,)).rowcount:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('pruned', ?)", (last,))

    async def touch(self, build_id: str, paths: Collection[str]) -> None:
        read, self._reader.unstamped = self._reader.unstamped, set()
        rows = [(build_id, path) for path in paths] + list(read)
        if rows:
            await self._write(self._touch, rows)

    def _touch(self, rows: list[tuple[str, str]]) -> None:
        """Stamp records as used now: at most every USE_STAMP_EVERY_S each (reads check the stamp's age).

        One statement per TOUCH_CHUNK rows, passed as JSON text: SQLite runs it without the GIL,
        where executemany took the GIL back for every row, each time waiting for the busy event
        loop to let go of it. The first HITs of 100,000 pages in memory stamp them all: row by
        row, the writer was still at it seconds after the load ended, and forced the loop off
        the GIL every 5 ms meanwhile; this way it takes about 3 us a row. Chunks keep the JSON
        small: the heap keeps its high-water mark."""
        now = time.time()
        with self._transaction() as db:
            for start in range(0, len(rows), TOUCH_CHUNK):
                db.execute(  # only records still stored: a record evicted meanwhile gets no stamp
                    "INSERT OR REPLACE INTO uses SELECT r.build, r.path, ? FROM json_each(?) AS j CROSS JOIN records AS r "
                    "ON r.build = json_extract(j.value, '$[0]') AND r.path = json_extract(j.value, '$[1]')",
                    (now, orjson.dumps(rows[start : start + TOUCH_CHUNK]).decode()),
                )

    # -- tags -------------------------------------------------------------------------

    async def mark_tag(self, build_id: str, tag: str, at: float) -> list[str]:
        return await self._write(self._mark_tag, build_id, tag, at)

    def _mark_tag(self, build_id: str, tag: str, at: float) -> list[str]:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO tag_marks VALUES (?, ?, ?)", (build_id, tag, at))
            self._log_change(db, build_id, "tag", tag, repr(at), at)
            rows = db.execute(
                "SELECT t.path FROM tags t JOIN records r ON r.build = t.build AND r.path = t.path "
                "WHERE t.build=? AND t.tag=? AND r.started <= ? ORDER BY t.path",
                (build_id, tag, at),
            ).fetchall()
        return [path for (path,) in rows]

    async def tag_marks(self, build_id: str) -> dict[str, float]:
        return await self._read(self._tag_marks, build_id)

    def _tag_marks(self, build_id: str) -> dict[str, float]:
        return dict(self._connection().execute("SELECT tag, at FROM tag_marks WHERE build=?", (build_id,)).fetchall())

    # -- other processes' writes ------------------------------------------------------

    async def changes(self, build_id: str, since: int) -> tuple[int, list[Change] | None]:
        return await self._read(self._changes, build_id, since)

    def _changes(self, build_id: str, since: int) -> tuple[int, list[Change] | None]:
        db = self._connection()
        db.execute("BEGIN")  # one snapshot for the counter and the rows
        try:
            # the AUTOINCREMENT counter: it never goes back when rows are deleted (old builds dropped)
            seq = db.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name='changes'").fetchone()[0]
            pruned = db.execute("SELECT value FROM meta WHERE name='pruned'").fetchone()
            if since < 0 or seq == since:
                return seq, []
            if seq < since or (pruned is not None and since < pruned[0]):
                return seq, None  # the database was replaced, or this process fell too far behind
            rows = db.execute("SELECT seq, kind, key, value FROM changes WHERE build=? AND seq > ? AND seq <= ? ORDER BY seq", (build_id, since, seq))
            return seq, [Change(n, kind, key, float(value) if kind == "tag" else value) for n, kind, key, value in rows]
        finally:
            db.execute("COMMIT")

    async def changed(self, build_id: str, poll: float) -> None:
        """Nothing tells this process of another's write: look again after `poll` seconds."""
        await asyncio.sleep(poll)

    # -- leases -----------------------------------------------------------------------

    async def acquire_lease(self, build_id: str, path: str, ttl: float) -> str | None:
        return await self._write(self._acquire, build_id, path, ttl)

    def _acquire(self, build_id: str, path: str, ttl: float) -> str | None:
        """The lease names its process: one left by a process that died is taken over.

        The disk cache is one machine's, so the holder's pid and start time say for sure
        whether it lives (a pid alone may have been reused by another process).
        """
        token = f"{process_id(os.getpid())}:{secrets.token_hex(8)}"
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT token, expires FROM leases WHERE build=? AND path=?", (build_id, path)).fetchone()
            if row is not None and row[1] > now and _alive(row[0]):
                return None
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (build_id, path, token, now + ttl))
        return token

    async def renew_lease(self, build_id: str, path: str, token: str, ttl: float) -> bool:
        return await self._write(self._renew, build_id, path, token, ttl)

    def _renew(self, build_id: str, path: str, token: str, ttl: float) -> bool:
        with self._transaction() as db:
            cursor = db.execute("UPDATE leases SET expires=? WHERE build=? AND path=? AND token=?", (time.time() + ttl, build_id, path, token))
        return cursor.rowcount == 1

    async def release_lease(self, build_id: str, path: str, token: str) -> None:
        await self._write(self._release, build_id, path, token)

    def _release(self, build_id: str, path: str, token: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE build=? AND path=? AND token=?", (build_id, path, token))

    # -- static paths, builds, servers --------------------------------------------------

    async def get_static_paths(self, build_id: str, page: str) -> list[str] | None:
        return await self._read(self._get_static_paths, build_id, page)

    def _get_static_paths(self, build_id: str, page: str) -> list[str] | None:
        row = self._connection().execute("SELECT paths FROM static_paths WHERE build=? AND page=?", (build_id, page)).fetchone()
        return None if row is None else list(orjson.loads(row[0]))

    async def put_static_paths(self, build_id: str, page: str, paths: list[str]) -> None:
        await self._write(self._put_static_paths, build_id, page, paths)

    def _put_static_paths(self, build_id: str, page: str, paths: list[str]) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO static_paths VALUES (?, ?, ?)", (build_id, page, orjson.dumps(paths)))

    async def announce(self, build_id: str, instance: str) -> None:
        await self._write(self._announce, build_id, instance)

    def _announce(self, build_id: str, instance: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO servers VALUES (?, ?, ?)", (instance, build_id, time.time()))

    async def builds_in_use(self) -> set[str]:
        return await self._read(self._builds_in_use)

    def _builds_in_use(self) -> set[str]:
        rows = self._connection().execute("SELECT DISTINCT build FROM servers WHERE seen > ?", (time.time() - SERVER_SEEN_S,))
        return {build for (build,) in rows}

    async def report(self, server: str, values: dict[str, Any]) -> None:
        await self._write(self._report, server, orjson.dumps(values))

    def _report(self, server: str, counters: bytes) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO reports VALUES (?, ?, ?)", (server, time.time(), counters))
            db.execute("DELETE FROM reports WHERE seen < ?", (time.time() - SERVER_SEEN_S,))

    async def reports(self) -> dict[str, dict[str, Any]]:
        return await self._read(self._reports)

    def _reports(self) -> dict[str, dict[str, Any]]:
        rows = self._connection().execute("SELECT server, counters FROM reports WHERE seen > ?", (time.time() - SERVER_SEEN_S,))
        return {server: orjson.loads(counters) for server, counters in rows}

    async def drop_builds(self, keep: Collection[str]) -> int:
        return await self._write(self._drop_builds, list(keep))

    def _drop_builds(self, keep: list[str]) -> int:
        other = f"build NOT IN ({','.join('?' * len(keep))})" if keep else "1"
        with self._transaction() as db:
            dropped = db.execute(f"SELECT count(*) FROM records WHERE {other}", keep).fetchone()[0]
            for table in _BUILD_TABLES:
                db.execute(f"DELETE FROM {table} WHERE {other}", keep)
            db.execute("DELETE FROM servers WHERE seen < ?", (time.time() - SERVER_SEEN_S,))
        return int(dropped)

    async def usage(self, build_id: str) -> tuple[int, int]:
        return await self._read(self._usage, build_id)

    def _usage(self, build_id: str) -> tuple[int, int]:
        db = self._connection()
        records = db.execute("SELECT count(*) FROM records WHERE build=?", (build_id,)).fetchone()[0]
        return int(records), _used_bytes(db)

    async def close(self) -> None:
        self._reader.close()
        await asyncio.to_thread(self._close)  # joins threads that may be mid-query

    def _close(self) -> None:
        self._reader.wait()
        if self.spill is not None:
            self.spill.close()
        self._readers.shutdown()
        self._writer.shutdown()
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()


def _used_bytes(db: sqlite3.Connection) -> int:
    """Bytes of the database's pages in use (free pages are reused before the file grows)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
    return int(pages * db.execute("PRAGMA page_size").fetchone()[0])


def process_id(pid: int) -> str:
    """A process's pid and start time (clock ticks since boot): unique even after pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return f"{pid}:0"
    return f"{pid}:{stat.rpartition(')')[2].split()[19]}"


def _alive(token: str) -> bool:
    pid, start, _ = token.split(":", 2)
    return process_id(int(pid)) == f"{pid}:{start}"
