"""Responses read from disk, kept in files the event loop reads again without waiting.

A page memory does not keep is read from the disk cache by its read process, a trip that
costs the event loop several times what sending the page does. So the read process also
appends every response it reads to a spill file, and memory keeps where it lies (a number,
MemoryCache.spill). The next request for it is read on the event loop itself, with
`preadv(RWF_NOWAIT)`: from the OS page cache, or not at all (EAGAIN: the kernel dropped
those pages, and the read process reads the record as before). The loop never waits for
the disk, and the bytes held stay out of the process's memory.

There are two spill files, unlinked temporary files in the cache folder: nothing is left
behind when the server ends. The read process appends to one until it passes its cap,
then empties the other and appends there. Each file's generation changes the moment it is
chosen to be emptied, before the read process hears of it, so a location into its old
bytes is never read again.

A spilled response is its key and freshness (JSON, see `encode`), then its head and body
as layout.py stores them.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
from pathlib import Path

import orjson

from isr.cache.layout import Served

_META = struct.Struct(">III")  # sizes of the JSON, of the head and of the body that follow it
_LENGTH_BITS = 24  # a spilled response is at most 16 MiB (larger ones are not read back)
_OFFSET_BITS = 40
MAX_LENGTH = (1 << _LENGTH_BITS) - 1
ResponseKey = tuple[str, str, str]  # (path, variant, coding)
Target = tuple[int, int, bool]  # the file appended to, its generation, and whether it is emptied first

log = logging.getLogger("isr")


def encode(key: ResponseKey, response: Served) -> list[bytes | memoryview]:
    """A response as spilled: its key and freshness, then its head and body."""
    meta = orjson.dumps([*key, response.status, response.generated_at, response.revalidate, response.started_at, response.tags])
    return [_META.pack(len(meta), len(response.head), len(response.body)), meta, response.head, response.body]


def decode(raw: memoryview, key: ResponseKey) -> Served | None:
    """The response spilled under a key (None: these bytes are another key's or damaged).
    Its head and body are copied out as bytes: uvloop writes bytes faster than views (a
    HIT's write took a third less of the event loop's time, 20,000 pages uniform)."""
    if len(raw) < _META.size:
        return None
    meta_size, head_size, body_size = _META.unpack_from(raw)
    head_at = _META.size + meta_size
    body_at = head_at + head_size
    if body_at + body_size != len(raw):
        return None
    try:
        path, variant, coding, status, generated_at, revalidate, started_at, tags = orjson.loads(raw[_META.size : head_at])
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    if (path, variant, coding) != key:
        return None
    return Served(status, bytes(raw[head_at:body_at]), bytes(raw[body_at:]), generated_at, revalidate, started_at, tags)


def open_spill(folder: Path, cap: int) -> SpillFiles | None:
    """The spill files of a server process in a cache folder, or None where the event loop
    could not read them back without waiting (no RWF_NOWAIT: not Linux, or a file system
    without it, such as tmpfs or NFS): responses are then read by the read process only."""
    if not hasattr(os, "RWF_NOWAIT"):
        return None
    try:
        files = SpillFiles(folder, cap)
    except OSError as exc:
        log.warning("cache: no spill files in %s (%s): pages beyond memory are read by the read process only", folder, exc)
        return None
    try:
        os.pwrite(files.fds[0], b"\0", 0)
        try:
            os.preadv(files.fds[0], [bytearray(1)], 0, os.RWF_NOWAIT)
        except BlockingIOError:
            pass  # supported: the byte just went to disk
        os.ftruncate(files.fds[0], 0)
    except OSError:  # EOPNOTSUPP: the file system cannot read without waiting
        files.close()
        return None
    return files


class SpillFiles:
    """The two spill files of one server process, on the event loop's side: which one the
    read process appends to, and reading a spilled response back."""

    def __init__(self, folder: Path, cap: int) -> None:
        self._cap = cap  # bytes of one file before the other is emptied and written instead
        self.fds: list[int] = []
        try:
            for _ in range(2):
                self.fds.append(_unlinked_file(folder))
        except OSError:
            self.close()
            raise
        self._generation = [0, 0]  # how often each file was emptied
        self._size = [0, 0]  # bytes written to each file, as the read process reported
        self._current = 0
        self._buffer = bytearray(0)  # read into, grown to the largest response read

    def target(self) -> Target:
        """The file the next reads append to (see Target)."""
        if self._size[self._current] < self._cap:
            return self._current, self._generation[self._current], False
        self._current ^= 1
        self._generation[self._current] += 1
        self._size[self._current] = 0
        return self._current, self._generation[self._current], True

    def location(self, target: Target, offset: int, length: int) -> int | None:
        """Where the read process wrote a response for a request of that target, as one
        number; None if it cannot be read back (the file was emptied since, or it is too large)."""
        file, generation, _ = target
        if generation != self._generation[file]:
            return None
        self._size[file] = max(self._size[file], offset + length)
        if length > MAX_LENGTH or offset >= 1 << _OFFSET_BITS:
            return None
        return ((generation << 1 | file) << _OFFSET_BITS | offset) << _LENGTH_BITS | length

    def read(self, location: int) -> memoryview | None:
        """A spilled response's bytes if the page cache holds them, without waiting for the
        disk; None if they are gone (the file was emptied since) or not in memory. They are
        valid until the next read: every read goes into one buffer, allocated once."""
        length = location & MAX_LENGTH
        offset = (location >> _LENGTH_BITS) & ((1 << _OFFSET_BITS) - 1)
        file_and_generation = location >> (_LENGTH_BITS + _OFFSET_BITS)
        file = file_and_generation & 1
        if file_and_generation >> 1 != self._generation[file]:
            return None
        if length > len(self._buffer):
            self._buffer = bytearray(length)  # a new one: views of the old may still be alive
        buffer = memoryview(self._buffer)[:length]
        try:
            count = os.preadv(self.fds[file], [buffer], offset, os.RWF_NOWAIT)
        except OSError:  # BlockingIOError: on disk, not in memory
            return None
        return buffer if count == length else None

    def close(self) -> None:
        fds, self.fds = self.fds, []
        for fd in fds:
            os.close(fd)


def _unlinked_file(folder: Path) -> int:
    """A file of our own in the folder, gone from it at once: the disk is freed when it closes."""
    fd, name = tempfile.mkstemp(prefix=".isr-spill-", dir=folder)
    os.unlink(name)
    return fd


class SpillWriter:
    """The read process's side: it appends the responses it reads to the spill files."""

    def __init__(self, fds: list[int]) -> None:
        self._fds = fds
        self._ends = [os.fstat(fd).st_size for fd in fds]  # a restarted process appends after what is there

    def empty(self, file: int) -> None:
        os.ftruncate(self._fds[file], 0)
        self._ends[file] = 0

    def append(self, file: int, key: ResponseKey, response: Served) -> list[int] | None:
        """Append a response: [file, offset, length], or None if it was not written whole (a full disk)."""
        parts = encode(key, response)
        offset, length = self._ends[file], sum(map(len, parts))
        try:
            written = os.pwritev(self._fds[file], parts, offset)
        except OSError:
            return None
        self._ends[file] += written
        return [file, offset, length] if written == length else None
