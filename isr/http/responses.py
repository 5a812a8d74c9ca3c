"""Encoding an engine Answer as an HTTP response: coding, conditional requests, extras.

A cached page asked for plainly (GET or HEAD over HTTP/1.1 keep-alive, no condition) is
written as `Prebuilt` bytes: the head its variant serialized once and the stored body,
with only x-isr-cache, Age and Date added. Building an aiohttp Response instead copies,
checks and serializes every header on every request: a third of a HIT's time.
"""

from __future__ import annotations

import time
from email.utils import formatdate

import orjson
from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11

from isr.cache.compression import ALL_CODINGS, Encoding, choose
from isr.cache.layout import Served
from isr.cache.record import Record, Variant
from isr.constants import CACHE_STATE, HIT, MISS, NO_STORE, READ_METHODS, STALE

Bytes = bytes | memoryview
_codings: dict[tuple[str, tuple[Encoding, ...]], Encoding] = {}  # memo: Accept-Encoding -> coding


def respond(
    request: web.BaseRequest,
    variant: Variant,
    state: str | None = None,
    record: Record | None = None,
    extra: dict[str, str] | None = None,
    now: float | None = None,
) -> web.StreamResponse:
    coding = _coding(request, variant.encodings)
    if now is None:
        now = time.time()
    if state is not None and record is not None and not extra and _plain(request):
        head, body = variant.response(coding)
        return _prebuilt(request, variant.status, head, body, state, record.generated_at, now)
    headers = variant.headers(coding)
    if state is not None:
        headers[CACHE_STATE] = state
    if record is not None:
        headers["Age"] = _age(record.generated_at, now).decode()
    if extra:
        headers.update(extra)
    etag = request.headers.get("If-None-Match")
    if etag is not None and variant.status == 200 and _matches(etag, variant.etags[coding]):
        headers.pop("Content-Encoding", None)
        return web.Response(status=304, headers=headers)
    return web.Response(status=variant.status, body=variant.bodies[coding], headers=headers)


def plain_coding(request: web.BaseRequest) -> Encoding | None:
    """The coding to ask a stored response in (`respond_stored`), if the request is plain."""
    return _coding(request, ALL_CODINGS) if _plain(request) else None


def respond_stored(request: web.BaseRequest, served: Served, now: float) -> Prebuilt:
    """A HIT answered with a response as the cache stored it (layout.py)."""
    return _prebuilt(request, served.status, served.head, served.body, HIT, served.generated_at, now)


def _prebuilt(
    request: web.BaseRequest, status: int, head: Bytes, body: Bytes, state: str, generated_at: float, now: float,
) -> Prebuilt:
    """A response's prebuilt head, its cache state, Age and Date lines, and its body (on GET)."""
    parts = (head, _STATE_LINES[state], _age(generated_at, now), _CLOCK.lines(now), body if request.method == "GET" else b"")
    return Prebuilt(request, status, parts)


class Prebuilt(web.StreamResponse):
    """A response written as the bytes given, in one write, on a connection kept alive.

    StreamResponse's own state (headers, cookies, compression) is never set up: aiohttp's
    connection only calls `prepare` and `write_eof` and reads `keep_alive` (its access log,
    which would read the headers, is off: see ConnectionServer).
    """

    _payload_writer = None  # never aiohttp's writer: what `prepared` and repr() read

    def __init__(self, request: web.BaseRequest, status: int, parts: tuple[Bytes, ...]) -> None:  # no super().__init__(): see above
        self._request = request
        self._status = status
        self._parts = parts
        self._keep_alive = True
        self._eof_sent = False

    def __repr__(self) -> str:
        if not self._parts:
            return f"<Prebuilt {self._status}, sent>"
        status_line = bytes(self._parts[0]).split(b"\r\n", 1)[0].decode()
        return f"<Prebuilt {status_line!r}, {sum(map(len, self._parts))} bytes>"

    async def prepare(self, request: web.BaseRequest) -> None:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.writelines(self._parts)
        # Let go of the head and body now, while they are in the CPU's caches: aiohttp drops
        # the response only after other connections' requests ran, and letting go then cost
        # a cache miss each on a page not served lately. The transport keeps what it did not send.
        self._parts = ()

    async def write_eof(self, data: bytes = b"") -> None:
        """Wait while the client reads slower than we write, as aiohttp's writer does."""
        self._eof_sent = True
        await self._request._payload_writer.drain()


class _Clock:
    """The Date and Server lines, made again once a second."""

    __slots__ = ("_second", "_lines")

    def __init__(self) -> None:
        self._second = -1
        self._lines = b""

    def lines(self, now: float) -> bytes:
        second = int(now)
        if second != self._second:
            self._second = second
            self._lines = f"\r\nDate: {formatdate(second, usegmt=True)}\r\nServer: {SERVER_SOFTWARE}\r\n\r\n".encode()
        return self._lines


_CLOCK = _Clock()
_STATE_LINES = {state: f"{CACHE_STATE}: {state}\r\nAge: ".encode() for state in (HIT, STALE, MISS)}


def _plain(request: web.BaseRequest) -> bool:
    return (
        request.method in READ_METHODS and request.version == HttpVersion11 and request.keep_alive
        and "If-None-Match" not in request.headers
    )


def _age(generated_at: float, now: float) -> bytes:
    return b"%d" % max(int(now - generated_at), 0)


def _coding(request: web.BaseRequest, available: tuple[Encoding, ...]) -> Encoding:
    if len(available) == 1:
        return "identity"
    accept = request.headers.get("Accept-Encoding", "")
    key = (accept, available)
    coding = _codings.get(key)
    if coding is None:
        if len(_codings) > 1024:
            _codings.clear()
        coding = _codings[key] = choose(accept, available)
    return coding


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return web.Response(
        status=status, body=body, content_type="application/json",
        headers={"Cache-Control": NO_STORE, **(headers or {})},
    )
