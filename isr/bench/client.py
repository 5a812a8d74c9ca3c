"""The load core's HTTP client: one keep-alive HTTP/1.1 connection per load client, on an
asyncio Protocol, sending GETs and reading whole answers (Content-Length, chunked, or until
the server closes).

The answers are parsed by llhttp, Node's HTTP parser, through MagicStack's httptools binding
(the parser uvicorn uses); this module only writes the requests and keeps the connection.
Why not aiohttp's client: its ClientSession costs about 180 µs of CPU a request (5,500
requests/s on a core), this about a third of that, so one process loads a server several
times harder before the generator itself is what is measured. It does only what the load
needs: GET, no redirects, no cookies, no decompression (bodies are counted as received).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import NamedTuple, cast
from urllib.parse import quote

import httptools
import yarl

# Every printable ASCII character but the space stays as written; anything else is escaped.
SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
ACCEPT_ENCODING = "gzip, deflate, br"
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
    """One connection; its httptools parser calls the on_* methods as the answer's parts arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.in_head = False  # between an answer's first byte and the end of its headers
        self.head_bytes = 0
        self.started = False  # an answer (or an interim one) has begun
        self.closed = False
        self.keep_alive = True

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if exc is None and self.started and not self.in_head and self._framed_by_close():
            # httptools does not expose llhttp_finish, so the end of a body that runs until the
            # server closes is this clean close, not a parser callback.
            waiter.set_result(Answer(self.parser.get_status_code(), self.headers, b"".join(self.body)))
        else:
            waiter.set_exception(ServerDisconnected("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            self._fail(ProtocolError("not an HTTP answer: bytes the client did not ask for"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"not an HTTP answer: {exc}"))
            return
        except httptools.HttpParserUpgrade:  # 101 Switching Protocols: what follows is not HTTP
            self._fail(ProtocolError("not an HTTP answer: the server switched protocols"))
            return
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD:
                self._fail(ProtocolError("not an HTTP answer: headers too long"))

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.waiter is None:  # a second answer in the bytes of one
            raise httptools.HttpParserError("an answer the client did not ask for")
        self.headers, self.body = {}, []
        self.in_head, self.head_bytes, self.started = True, 0, True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:  # not the trailers of a chunked body
            self.headers[name.decode("latin-1").lower()] = value.decode("latin-1").strip()

    def on_headers_complete(self) -> None:
        self.in_head = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            self.started = False  # an interim answer (100 Continue): the real one follows
            return
        waiter, self.waiter = self.waiter, None
        self.keep_alive = self.parser.should_keep_alive()
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(status, self.headers, b"".join(self.body)))

    # --- the client's side ---------------------------------------------------------------

    def _framed_by_close(self) -> bool:
        """Whether the answer's body ends where the connection does (RFC 9112 §6.3): neither a
        Content-Length nor a chunked Transfer-Encoding (an answer without a body has ended at
        its headers)."""
        headers = self.headers
        return "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "").lower()

    def _fail(self, exc: Exception) -> None:
        self.closed = True  # now: connection_lost comes later, and the next request must not use it
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def send(self, request: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self.started = False
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
