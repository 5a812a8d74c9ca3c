"""The load core's HTTP client: one keep-alive HTTP/1.1 connection per load client, on an
asyncio Protocol, sending GETs and reading whole answers (Content-Length, chunked, or until
the server closes).

aiohttp's ClientSession costs about 180 µs of CPU a request (5,500 requests/s on a core);
this costs about a quarter of that, so one process loads a server 4-5 times harder before
the generator itself is what is measured. It does only what the load needs: GET, no
redirects, no cookies, no decompression (bodies are counted as received).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import NamedTuple, cast
from urllib.parse import quote

import yarl

# Every printable ASCII character but the space stays as written; anything else is escaped.
SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
ACCEPT_ENCODING = "gzip, deflate, br"
NO_BODY = frozenset({204, 304})
MAX_HEAD = 64 * 1024  # bytes of status line and headers before the answer is refused


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes


class ProtocolError(ConnectionError):
    """The server's bytes are not an HTTP/1.1 answer this client can read."""


class ServerDisconnected(ConnectionError):
    """The server closed the connection before the answer was complete."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Answer] | None = None
        self.head: tuple[int, dict[str, str]] | None = None
        self.length: int | None = None  # body bytes expected; None: chunked or until close
        self.chunked = False
        self.closed = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if self.head is not None and self.length is None and not self.chunked:  # body until close
            waiter.set_result(Answer(*self.head, bytes(self.buffer)))
        else:
            waiter.set_exception(ServerDisconnected("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None:
            return  # nothing asked: dropped at the next request
        try:
            answer = self._answer()
        except (ValueError, IndexError) as exc:
            self._fail(ProtocolError(f"not an HTTP answer: {exc}"))
            return
        if answer is not None:
            waiter, self.waiter = self.waiter, None
            if not waiter.done():
                waiter.set_result(answer)

    def _answer(self) -> Answer | None:
        """The complete answer at the front of the buffer (consumed), or None for more bytes."""
        while self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise ValueError("headers too long")
                return None
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            version, _, rest = lines[0].partition(" ")
            status = int(rest[:3])
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.head = (status, headers)
            self.keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            if status in NO_BODY:
                self.length = 0
            elif not self.chunked:
                length = headers.get("content-length")
                self.length = int(length) if length is not None else None
                if self.length is None:
                    self.keep_alive = False
        status, headers = self.head
        if self.chunked:
            body = self._chunked()
            if body is None:
                return None
        elif self.length is None:
            return None  # until the server closes
        else:
            if len(self.buffer) < self.length:
                return None
            body = bytes(self.buffer[: self.length])
            del self.buffer[: self.length]
        self.head, self.length, self.chunked = None, None, False
        return Answer(status, headers, body)

    def _chunked(self) -> bytes | None:
        """The whole chunked body if it is all in the buffer (consumed), else None."""
        buffer, at = self.buffer, 0
        parts: list[bytes] = []
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(bytes(buffer[at:line_end]).split(b";", 1)[0], 16)
            at = line_end + 2
            if size == 0:
                if buffer[at : at + 2] == b"\r\n":
                    end = at + 2
                else:  # trailers, then an empty line
                    found = buffer.find(b"\r\n\r\n", at)
                    if found < 0:
                        return None
                    end = found + 4
                del buffer[:end]
                return b"".join(parts)
            if len(buffer) < at + size + 2:
                return None
            parts.append(bytes(buffer[at : at + size]))
            at += size + 2

    def _fail(self, exc: Exception) -> None:
        self.closed = True  # now: connection_lost comes later, and the next request must not use it
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def send(self, request: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self.buffer.clear()
        self.waiter = loop.create_future()
        self.transport.write(request)
        return self.waiter


class Client:
    """GETs to one server over one keep-alive connection, opened (again) when needed."""

    def __init__(self, base: yarl.URL, timeout_s: float, compressed: bool = True) -> None:
        self.loop = asyncio.get_running_loop()
        self.host = base.raw_host or "127.0.0.1"
        self.port = base.port or (443 if base.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if base.scheme == "https" else None
        self.timeout_s = timeout_s
        authority = base.host_port_subcomponent or self.host
        extra = f"Accept-Encoding: {ACCEPT_ENCODING}\r\n" if compressed else ""
        self.head = f" HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: isr-bench\r\n{extra}\r\n".encode("latin-1")
        self.requests: dict[str, bytes] = {}
        self.connection: _Connection | None = None

    def request_bytes(self, path: str) -> bytes:
        request = self.requests.get(path)
        if request is None:
            request = self.requests[path] = b"GET " + quote(path, safe=SAFE).encode("ascii") + self.head
        return request

    async def get(self, path: str) -> Answer:
        """GET path; OSError (ConnectionError, TimeoutError) when there is no whole answer."""
        connection = self.connection
        if connection is None or connection.closed:
            connection = self.connection = await self._connect()
        waiter = connection.send(self.request_bytes(path), self.loop)
        timer = self.loop.call_later(self.timeout_s, connection._fail, TimeoutError(f"no answer within {self.timeout_s:g} s"))
        try:
            answer = await waiter
        finally:
            timer.cancel()
        if not connection.keep_alive:
            self.close()
        return answer

    async def _connect(self) -> _Connection:
        connect = self.loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl)
        try:
            _, connection = await asyncio.wait_for(connect, self.timeout_s)
        except TimeoutError:
            raise TimeoutError(f"could not connect within {self.timeout_s:g} s") from None
        return connection

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and connection.transport is not None:
            connection.closed = True
            connection.transport.close()
