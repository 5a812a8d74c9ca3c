"""The program of the disk cache's read process, which answers record reads (see reader.py).

Protocol, over a socketpair: a request is a u32 length and a JSON list [spill, keys]: keys
a list of [build, path, want], where want is null (the whole record) or [variant, coding]
(that one response, as layout.served picks it); spill null, or [file, empty?]: append each
response read to that spill file (spill.py), emptied first if asked. A reply is a u32
index length, a u32 blob length, the JSON index and the blobs in index order. The index
has, per key found, [build, path, want, stamp old?, sizes of its blobs, freshness,
spilled] (freshness: null for a whole record, else [status, generated_at, revalidate,
started_at, tags, generation]; spilled: null, or [file, offset, length] of the response appended), or
is {"error": message}. A whole record is one blob, a response two (head, body). Replies
come in request order.

It runs as `python -m isr.cache.read_process FD DATABASE STAMP_EVERY_S [SPILL_FD SPILL_FD]`
and imports of isr only the record layout and spill (`isr` imports its client lazily), so
it starts in tens of milliseconds.
"""

from __future__ import annotations

import socket
import sqlite3
import struct
import sys
import time
from collections import defaultdict
from typing import Any

import orjson

from isr.cache import layout, spill

PAGE_CACHE_KB = 4096  # per connection: the OS page cache holds the rest, outside our RSS
GET_MANY = (
    "SELECT r.path, coalesce(u.used, 0), r.raw FROM records r LEFT JOIN uses u ON u.build = r.build AND u.path = r.path "
    "WHERE r.build = ? AND r.path IN (SELECT value FROM json_each(?))"
)
LENGTH = struct.Struct(">I")
REPLY_HEAD = struct.Struct(">II")
Blob = bytes | memoryview


def connect_reader(file: str) -> sqlite3.Connection:
    """A read connection: a small page cache and no mmap, so memory stays what the LRU holds."""
    db = sqlite3.connect(file, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KB}")
    db.execute("PRAGMA mmap_size=0")
    return db


def read_records(db: sqlite3.Connection, keys: list[list[Any]], stamp_every_s: float,
                 spill_to: tuple[spill.SpillWriter, int] | None = None) -> tuple[list[Any], list[Blob]]:
    """The records stored under (build, path, want) keys, one query per build asked for
    (nearly always one), with whether each one's use stamp is older than `stamp_every_s`;
    each response read is appended to spill file `spill_to` if given."""
    by_build: defaultdict[str, defaultdict[str, dict[Any, None]]] = defaultdict(lambda: defaultdict(dict))
    for build, path, want in keys:
        by_build[build][path][want and tuple(want)] = None  # each key once, however many ask it
    old = time.time() - stamp_every_s
    index: list[Any] = []
    blobs: list[Blob] = []
    for build, wants in by_build.items():
        for path, used, raw in db.execute(GET_MANY, (build, orjson.dumps(list(wants)).decode())):
            for want in wants[path]:
                picked = _picked(raw, want, blobs)
                if picked is None:
                    continue
                sizes, response = picked
                if response is None:
                    index.append((build, path, want, used < old, sizes, None, None))
                    continue
                freshness = [response.status, response.generated_at, response.revalidate, response.started_at, response.tags, response.generation]
                spilled = None if spill_to is None else spill_to[0].append(spill_to[1], (path, *want), response)
                index.append((build, path, want, used < old, sizes, freshness, spilled))
    return index, blobs


def _picked(raw: bytes, want: tuple[str, str] | None, blobs: list[Blob]) -> tuple[list[int], layout.Served | None] | None:
    """What a key wants of a record, appended to `blobs`: its sizes, and the response if
    one was wanted (None: a response asked of bytes it cannot read, answered as not found)."""
    if want is None:
        blobs.append(raw)
        return [len(raw)], None
    try:
        response = layout.served(memoryview(raw), *want)  # slices, not copies, until the reply is joined
    except Exception:  # another isr's layout, or damaged bytes: found as nothing, the engine decides
        return None
    blobs += (response.head, response.body)
    return [len(response.head), len(response.body)], response


def reply(index: Any, blobs: list[Blob]) -> bytes:
    head = orjson.dumps(index)
    return REPLY_HEAD.pack(len(head), sum(map(len, blobs))) + head + b"".join(blobs)


def _spilling(writer: spill.SpillWriter | None, spill_to: list[Any] | None) -> tuple[spill.SpillWriter, int] | None:
    """Where a request's responses are spilled to: its file, emptied first if the request asks."""
    if writer is None or spill_to is None:
        return None
    target, empty = spill_to
    if empty:
        writer.empty(target)
    return writer, target


def serve(fd: int, file: str, stamp_every_s: float, spill_fds: list[int]) -> None:
    """Answer requests until the server closes its end (or dies)."""
    sock = socket.socket(fileno=fd)
    requests = sock.makefile("rb")
    db = connect_reader(file)
    writer = spill.SpillWriter(spill_fds) if spill_fds else None
    while len(head := requests.read(LENGTH.size)) == LENGTH.size:
        (size,) = LENGTH.unpack(head)
        spill_to, keys = orjson.loads(requests.read(size))
        try:
            answer = reply(*read_records(db, keys, stamp_every_s, _spilling(writer, spill_to)))
        except (sqlite3.Error, OSError) as exc:
            answer = reply({"error": f"{type(exc).__name__}: {exc}"}, [])
        sock.sendall(answer)


if __name__ == "__main__":
    try:
        serve(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), [int(fd) for fd in sys.argv[4:]])
    except (BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass  # the server went away: nothing is waiting for an answer
