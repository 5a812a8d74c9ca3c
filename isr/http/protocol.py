"""The HTTP connection: aiohttp's request handler under the limits nginx puts on clients.

A slow or stalled client must not hold a connection (and its file descriptor) for
ever: a connection idle past 75 s is closed (aiohttp's keep-alive timer, which also
runs from the connection's start), a request's headers must be complete within 60 s
of their first byte, and a body must keep arriving (`read_body`: 60 s between reads).
A header line over 16 KB, or headers over 32 KB in all, get 431.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import yarl._url
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from isr.errors import BodyTimeout, PayloadTooLarge

IDLE_TIMEOUT_S = 75.0
HEADER_TIMEOUT_S = 60.0
BODY_TIMEOUT_S = 60.0  # between two reads of a request body
MAX_HEADER_LINE = 16 * 1024  # bytes of one header line (and of the request line)
MAX_HEADERS_BYTES = 32 * 1024  # bytes of all headers of a request
MAX_HEADERS = 128  # header lines of a request
READ_CHUNK = 2**16

log = logging.getLogger("isr")


class Connection(RequestHandler):
    """One client connection; times the headers of every request it sends."""

    _headers_started: float | None = None  # loop time of the first byte of headers not complete yet

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_request():
            self._headers_started = None  # a request is complete: these bytes were its headers or body
        elif data and self._headers_started is None:
            started = self._headers_started = self._loop.time()
            self._loop.call_later(HEADER_TIMEOUT_S, self._headers_overdue, started)

    def _awaiting_request(self) -> bool:
        """Between requests: what arrives now is the next request's headers."""
        return self._waiter is not None and not self._waiter.done()

    def _headers_overdue(self, started: float) -> None:
        if self._headers_started == started and self._awaiting_request():
            self.force_close()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
        """A request aiohttp could not parse is the client's error: one line, no traceback."""
        if isinstance(exc, LineTooLong):
            return too_large_headers()
        if isinstance(exc, HttpProcessingError) and 400 <= status < 500:
            log.info("bad request from %s: %s", request.remote, str(exc.message).splitlines()[0] if exc.message else status)
            response = web.json_response({"error": {"code": "BAD_REQUEST", "message": "malformed HTTP request"}}, status=status)
            response.force_close()
            return response
        return super().handle_error(request, status, exc, message)


class ConnectionServer(web.Server):
    """aiohttp's low-level server, making `Connection`s with the limits above. No access
    log: isr logs what it serves itself, and a HIT's response (`Prebuilt`) has no headers
    for aiohttp's logger to read."""

    def __init__(self, handler: Any) -> None:
        build_urls_uncached()
        super().__init__(
            handler, access_log=None, keepalive_timeout=IDLE_TIMEOUT_S,
            max_line_size=MAX_HEADER_LINE, max_field_size=MAX_HEADER_LINE, max_headers=MAX_HEADERS,
        )

    def __call__(self) -> RequestHandler:
        return Connection(self, loop=self._loop, **self._kwargs)


def build_urls_uncached() -> None:
    """Make the URL aiohttp's parser builds of every request's path without yarl's cache.

    yarl keeps the last 128 URLs built (`build_pre_encoded_url`, an lru_cache), which pays
    when the same few paths come again and again. A site of many pages seldom sees a path
    twice in 128 requests, so nearly every request paid the cache's miss on top of building
    its URL: in-process, 0.95 µs a request spread over 100,000 pages against 0.72 µs
    uncached, while one page asked for over and over took 0.48 µs from the cache. That
    made a HIT of any page but the few most asked for slower for nothing.
    """
    cached = yarl._url.build_pre_encoded_url
    yarl._url.build_pre_encoded_url = getattr(cached, "__wrapped__", cached)


def headers_too_large(request: web.BaseRequest) -> bool:
    return sum(len(name) + len(value) + 4 for name, value in request.raw_headers) > MAX_HEADERS_BYTES


def too_large_headers() -> web.Response:
    response = web.json_response(
        {"error": {"code": "REQUEST_HEADER_FIELDS_TOO_LARGE", "message": "request headers are over 32 KB (or one is over 16 KB)"}},
        status=431, headers={"Cache-Control": "no-store"},
    )
    response.force_close()
    return response


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The request body, refused when over the limit, and given up on when it stalls."""
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge(f"request body of {request.content_length} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = await asyncio.wait_for(request.content.read(READ_CHUNK), BODY_TIMEOUT_S)
        except TimeoutError:
            request.protocol.force_close()
            raise BodyTimeout(f"the request body stalled for {BODY_TIMEOUT_S:g} s") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
