"""The program of the disk cache's read process, which answers record reads (see reader.py).

Protocol, over a socketpair: a request is a u32 length and a JSON list of [build, path];
a reply is a u32 index length, a u32 blob length, the JSON index ([build, path, stamp
old?, size] per record found, or {"error": message}) and the records' bytes in index
order. Replies come in request order.

It runs as a script (`python read_process.py FD DATABASE STAMP_EVERY_S`) and imports nothing
of isr, so the process starts in tens of milliseconds.
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

PAGE_CACHE_KB = 4096  # per connection: the OS page cache holds the rest, outside our RSS
GET_MANY = (
    "SELECT r.path, coalesce(u.used, 0), r.raw FROM records r LEFT JOIN uses u ON u.build = r.build AND u.path = r.path "
    "WHERE r.build = ? AND r.path IN (SELECT value FROM json_each(?))"
)
LENGTH = struct.Struct(">I")
REPLY_HEAD = struct.Struct(">II")


def connect_reader(file: str) -> sqlite3.Connection:
    """A read connection: a small page cache and no mmap, so memory stays what the LRU holds."""
    db = sqlite3.connect(file, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KB}")
    db.execute("PRAGMA mmap_size=0")
    return db


def read_records(db: sqlite3.Connection, keys: list[list[str]], stamp_every_s: float) -> tuple[list[Any], list[bytes]]:
    """The records stored under (build, path) keys, one query per build asked for (nearly
    always one), with whether each one's use stamp is older than `stamp_every_s`."""
    by_build: defaultdict[str, list[str]] = defaultdict(list)
    for build, path in keys:
        by_build[build].append(path)
    old = time.time() - stamp_every_s
    index: list[Any] = []
    blobs: list[bytes] = []
    for build, paths in by_build.items():
        for path, used, raw in db.execute(GET_MANY, (build, orjson.dumps(paths).decode())):
            index.append((build, path, used < old, len(raw)))
            blobs.append(raw)
    return index, blobs


def reply(index: Any, blobs: list[bytes]) -> bytes:
    head = orjson.dumps(index)
    return REPLY_HEAD.pack(len(head), sum(map(len, blobs))) + head + b"".join(blobs)


def serve(fd: int, file: str, stamp_every_s: float) -> None:
    """Answer requests until the server closes its end (or dies)."""
    sock = socket.socket(fileno=fd)
    requests = sock.makefile("rb")
    db = connect_reader(file)
    while len(head := requests.read(LENGTH.size)) == LENGTH.size:
        (size,) = LENGTH.unpack(head)
        keys = orjson.loads(requests.read(size))
        try:
            answer = reply(*read_records(db, keys, stamp_every_s))
        except sqlite3.Error as exc:
            answer = reply({"error": f"{type(exc).__name__}: {exc}"}, [])
        sock.sendall(answer)


if __name__ == "__main__":
    try:
        serve(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]))
    except (BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass  # the server went away: nothing is waiting for an answer
