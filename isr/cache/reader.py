"""Record reads of the disk cache, answered by a process of its own (read_process.py).

Why a process and not a thread: a reader thread needs the GIL to hand each row back, and
an event loop busy serving gives the GIL up only when it waits, or once every switch
interval (5 ms). Measured at 20,000 pages beyond memory, a batch of 31 reads took 3.8 ms
on a thread though SQLite needed a tenth of that, and the loop sat idle a fifth of the
time waiting for it. The process shares no GIL: it reads while the loop serves, and the
loop only receives the bytes on a socket it polls like any other.

The process starts on the first read, ends when its socket closes (so also when the
server dies), and is started again on the next read if it ever ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections import deque
from pathlib import Path

import orjson

from isr.cache import read_process
from isr.cache.layout import Served
from isr.cache.spill import SpillFiles, Target
from isr.cache.threads import RunningLoop
from isr.errors import CacheError

log = logging.getLogger("isr")

Want = tuple[str, str] | None  # (variant, coding) for one response, None for the whole record
Key = tuple[str, str, Want]  # (build, path, want)
Found = bytes | Served  # a whole record's bytes, or one of its responses
_STOP_WAIT_S = 5.0
_ISR_FOLDER = str(Path(__file__).resolve().parents[2])  # where this isr package is imported from


class RecordReader:
    def __init__(self, file: Path, stamp_every_s: float, spill: SpillFiles | None = None) -> None:
        self._file = file
        self._spill = spill
        self._stamp_every_s = stamp_every_s
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: deque[tuple[asyncio.Future[dict[Key, Found]], Target | None]] = deque()  # with where they spill
        self._unsent = bytearray()
        self._expect(None)
        self.unstamped: set[tuple[str, str]] = set()  # (build, path) read whose use stamp is old (DiskBackend.touch)
        self._closed = False
        self._running = RunningLoop()

    def fetch(self, keys: list[Key]) -> asyncio.Future[dict[Key, Found]]:
        """What is stored under these keys (those found), as a future."""
        if self._closed:
            raise CacheError("the cache is closed")  # a late read would wait forever
        loop = self._running()
        if self._loop is not loop:
            self._stop(CacheError("the cache is used from another event loop"))
            self._start(loop)
        sock = self._sock
        assert sock is not None
        future: asyncio.Future[dict[Key, Found]] = loop.create_future()
        target = None if self._spill is None else self._spill.target()
        body = orjson.dumps([None if target is None else [target[0], target[2]], keys])  # [file, empty?]
        self._unsent += read_process.LENGTH.pack(len(body)) + body
        self._waiting.append((future, target))
        self._send()
        return future

    def close(self) -> None:
        """Stop the process (on the loop that reads; waiting for it to end is `wait`)."""
        self._closed = True
        self._stop(CacheError("the cache is closed"))

    def wait(self) -> None:
        """Reap a stopped process (blocking: call it off the loop)."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.wait(_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.wait()  # one that ended or was stopped before: it has read its socket's EOF
        ours, theirs = socket.socketpair()
        fds = [theirs.fileno(), *(self._spill.fds if self._spill else ())]
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-P", "-m", read_process.__name__, str(fds[0]), str(self._file), repr(self._stamp_every_s), *map(str, fds[1:])],
                pass_fds=fds, stdin=subprocess.DEVNULL, env=_importing_this_isr(),
            )
        except OSError as exc:
            ours.close()
            raise CacheError(f"cannot start the cache's read process: {exc}") from None
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock, self._loop = ours, loop
        loop.add_reader(ours.fileno(), self._received)

    def _stop(self, reason: CacheError) -> None:
        sock, loop = self._sock, self._loop
        self._sock = self._loop = None
        if sock is not None and loop is not None:
            if not loop.is_closed():
                loop.remove_reader(sock.fileno())
                loop.remove_writer(sock.fileno())
            sock.close()  # the process reads its end's EOF and exits
        self._unsent.clear()
        self._expect(None)
        waiting, self._waiting = self._waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(reason)

    def _send(self) -> None:
        sock, loop = self._sock, self._loop
        assert sock is not None and loop is not None
        try:
            sent = sock.send(self._unsent)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._ended(f"cannot reach it: {exc}")
            return
        del self._unsent[:sent]
        if self._unsent:
            loop.add_writer(sock.fileno(), self._flush)

    def _flush(self) -> None:
        assert self._sock is not None and self._loop is not None
        self._loop.remove_writer(self._sock.fileno())
        self._send()

    def _expect(self, head: tuple[int, int] | None) -> None:
        """Receive a reply's head next (None), or the body of the reply with this head."""
        self._head = head
        self._frame = bytearray(read_process.REPLY_HEAD.size if head is None else sum(head))
        self._view = memoryview(self._frame)
        self._filled = 0

    def _received(self) -> None:
        """Read into the frame expected, exactly: bytes go from the socket to it and from it
        into each record's bytes, no other copy."""
        sock = self._sock
        assert sock is not None
        while True:
            try:
                count = sock.recv_into(self._view[self._filled :])
            except BlockingIOError:
                return
            except OSError as exc:
                self._ended(str(exc))
                return
            if not count:
                self._ended("it ended")
                return
            self._filled += count
            if self._filled < len(self._frame):
                return  # the socket is drained
            if self._head is None:
                head = read_process.REPLY_HEAD.unpack(self._frame)
                self._expect(head)
                if sum(head):
                    continue
            self._answer()

    def _answer(self) -> None:
        assert self._head is not None
        index_size, _ = self._head
        view = self._view
        index = orjson.loads(view[:index_size])
        self._expect(None)
        future, target = self._waiting.popleft()
        if future.done():
            return
        if isinstance(index, dict):
            future.set_exception(CacheError(f"cannot read the cache: {index['error']}"))
            return
        found: dict[Key, Found] = {}
        offset = index_size
        for build, path, want, unstamped, sizes, freshness, spilled in index:
            if freshness is None:
                found[build, path, None] = bytes(view[offset : offset + sizes[0]])
            else:
                (head, body), (status, generated_at, revalidate, started_at, tags, generation) = sizes, freshness
                found[build, path, tuple(want)] = Served(
                    status, bytes(view[offset : offset + head]), bytes(view[offset + head : offset + head + body]),
                    generated_at, revalidate, started_at, tags, generation, self._spilled(target, spilled),
                )  # copies: views would keep the whole reply alive while any one response is unsent
            offset += sum(sizes)
            if unstamped:
                self.unstamped.add((build, path))
        future.set_result(found)

    def _spilled(self, target: Target | None, where: list[int] | None) -> int | None:
        """The location of a response the process spilled for a request, as SpillFiles names it."""
        if target is None or where is None or self._spill is None:
            return None
        _, offset, length = where
        return self._spill.location(target, offset, length)

    def _ended(self, why: str) -> None:
        log.warning("cache: the read process stopped (%s); it starts again on the next read", why)
        self._stop(CacheError(f"the cache's read process stopped ({why})"))


def _importing_this_isr() -> dict[str, str]:
    """The read process's environment: it imports this server's isr, whatever the working
    folder holds (`-P` leaves the working folder off its path, which an `isr.py` there would shadow)."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{_ISR_FOLDER}{os.pathsep}{path}" if path else _ISR_FOLDER}
