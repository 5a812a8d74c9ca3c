"""A HIT's prebuilt response: written in one call as given, never onto a closing connection."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from isr.http.responses import Prebuilt


class Transport:
    def __init__(self, closing: bool = False) -> None:
        self.closing = closing
        self.written: list[list[bytes]] = []

    def is_closing(self) -> bool:
        return self.closing

    def writelines(self, parts: Any) -> None:
        self.written.append(list(parts))


class Writer:
    """aiohttp's writer as far as Prebuilt uses it: drain() waits while the client is slow."""

    def __init__(self) -> None:
        self.readable = asyncio.Event()

    async def drain(self) -> None:
        await self.readable.wait()


class Request:
    def __init__(self, transport: Transport | None) -> None:
        self.transport = transport
        self._payload_writer = Writer()


def test_the_parts_go_out_in_one_write_and_the_connection_stays_open() -> None:
    transport = Transport()
    request = Request(transport)
    parts = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", b"x-isr-cache: HIT\r\nAge: ", b"3", b"\r\n\r\n", b"hi")
    response = Prebuilt(request, 200, parts)  # type: ignore[arg-type]
    assert response.keep_alive and not response.prepared and response.status == 200
    asyncio.run(response.prepare(request))  # type: ignore[arg-type]
    assert transport.written == [list(parts)]


def test_a_response_lets_go_of_its_bytes_once_written() -> None:
    """Right after the write, not when aiohttp drops the response (see Prebuilt.prepare)."""
    transport = Transport()
    request = Request(transport)
    body = bytes(4000)
    response = Prebuilt(request, 200, (b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n", body))  # type: ignore[arg-type]
    assert repr(response) == "<Prebuilt 'HTTP/1.1 200 OK', 4041 bytes>"
    held = sys.getrefcount(body)
    asyncio.run(response.prepare(request))  # type: ignore[arg-type]
    transport.written.clear()
    assert sys.getrefcount(body) == held - 1
    assert repr(response) == "<Prebuilt 200, sent>"


@pytest.mark.parametrize("transport", [None, Transport(closing=True)])
def test_a_client_gone_is_a_connection_error(transport: Transport | None) -> None:
    request = Request(transport)
    response = Prebuilt(request, 200, (b"HTTP/1.1 200 OK\r\n",))  # type: ignore[arg-type]
    with pytest.raises(ConnectionResetError):  # aiohttp's connection takes it as the client gone
        asyncio.run(response.prepare(request))  # type: ignore[arg-type]
    assert transport is None or transport.written == []


def test_the_response_ends_only_once_a_slow_client_has_read_enough() -> None:
    """Without the wait, a client that sends requests and reads nothing would make the
    server buffer every answer."""

    async def scenario() -> None:
        request = Request(Transport())
        response = Prebuilt(request, 200, (b"HTTP/1.1 200 OK\r\n",))  # type: ignore[arg-type]
        await response.prepare(request)  # type: ignore[arg-type]
        ending = asyncio.ensure_future(response.write_eof())
        await asyncio.sleep(0.01)
        assert not ending.done()  # the next request is not read while this one's bytes wait
        request._payload_writer.readable.set()
        await asyncio.wait_for(ending, 5)

    asyncio.run(scenario())
