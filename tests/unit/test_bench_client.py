"""The load core's HTTP/1.1 client (isr.bench.client) against a raw TCP server that answers
with exactly the bytes each test gives: framing by Content-Length, chunked and close, keep-alive
and reconnection, interim answers, and what it does with a broken or silent server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import yarl

from isr.bench.client import Client, ProtocolError, ServerDisconnected

Script = Callable[[bytes], list[bytes] | None]  # request head -> chunks to send (None: close at once)


class Raw:
    """A TCP server: for each request head read, it writes the chunks the script gives back."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self.url = ""
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                chunks = self.script(head)
                if chunks is None:
                    break
                for chunk in chunks:
                    if chunk == b"CLOSE":
                        writer.close()
                        return
                    if chunk == b"HANG":
                        await asyncio.sleep(10)
                    writer.write(chunk)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Script], Awaitable[Raw]]]:
    servers: list[tuple[asyncio.Server, Raw]] = []

    async def start(script: Script) -> Raw:
        server = Raw(script)
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append((listening, server))
        server.url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
        return server

    yield start
    for listening, server in servers:
        listening.close()
        await listening.wait_closed()
        for writer in server.writers:
            writer.close()
    await asyncio.sleep(0)  # the transports' close callbacks run


Start = Callable[[Script], Awaitable[Raw]]


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


async def test_content_length_answers_on_one_kept_alive_connection(raw: Start) -> None:
    server = await raw(lambda head: [answer(b"hello", "X-Isr-Cache: HIT", "Age: 3")])
    client = Client(yarl.URL(server.url), 5.0)
    for _ in range(3):
        status, headers, body = await client.get("/a")
        assert (status, body) == (200, b"hello")
        assert headers["x-isr-cache"] == "HIT" and headers["age"] == "3"  # names in lower case
    assert server.connections == 1 and len(server.requests) == 3
    client.close()


async def test_the_request_it_sends(raw: Start) -> None:
    server = await raw(lambda head: [answer(b"")])
    port = yarl.URL(server.url).port
    client = Client(yarl.URL(server.url), 5.0)
    plain = Client(yarl.URL(server.url), 5.0, compressed=False)
    await client.get("/items/a b?q=1&r=é")
    await plain.get("/x")
    plain.close()
    first, second = (head.decode("latin-1").split("\r\n") for head in server.requests)
    assert first[0] == "GET /items/a%20b?q=1&r=%C3%A9 HTTP/1.1"  # space and non-ASCII escaped, the rest as written
    assert f"Host: 127.0.0.1:{port}" in first and "Accept-Encoding: gzip, deflate, br" in first
    assert not any(line.startswith("Accept-Encoding") for line in second)
    client.close()


async def test_answers_split_across_reads_and_several_in_one(raw: Start) -> None:
    whole = answer(b"0123456789", "X-A: 1")
    server = await raw(lambda head: [whole[:5], whole[5:30], whole[30:]])
    client = Client(yarl.URL(server.url), 5.0)
    assert (await client.get("/")).body == b"0123456789"
    assert (await client.get("/")).body == b"0123456789"
    client.close()


async def test_chunked_bodies_with_and_without_trailers(raw: Start) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"
    trailed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
    answers = iter([[chunked[:40], chunked[40:]], [trailed]])
    server = await raw(lambda head: next(answers))
    client = Client(yarl.URL(server.url), 5.0)
    assert (await client.get("/")).body == b"hello, world"
    assert (await client.get("/")).body == b"abc"
    assert server.connections == 1
    client.close()


async def test_interim_answers_are_skipped_and_204_304_have_no_body(raw: Start) -> None:
    answers = iter([
        [b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"done")],
        [b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n"],
        [b"HTTP/1.1 204 No Content\r\n\r\n"],
        [answer(b"after")],
    ])  # fmt: skip
    server = await raw(lambda head: next(answers))
    client = Client(yarl.URL(server.url), 5.0)
    assert [(a.status, a.body) for a in [await client.get("/") for _ in range(4)]] == [
        (200, b"done"), (304, b""), (204, b""), (200, b"after"),
    ]  # fmt: skip
    client.close()


async def test_connection_close_and_a_body_until_close_then_a_new_connection(raw: Start) -> None:
    answers = iter([
        [answer(b"bye", "Connection: close"), b"CLOSE"],
        [b"HTTP/1.1 200 OK\r\n\r\nuntil the end", b"CLOSE"],
        [answer(b"again")],
    ])  # fmt: skip
    server = await raw(lambda head: next(answers))
    client = Client(yarl.URL(server.url), 5.0)
    assert (await client.get("/")).body == b"bye"
    assert (await client.get("/")).body == b"until the end"
    assert (await client.get("/")).body == b"again"
    assert server.connections == 3
    client.close()


async def test_a_server_that_closes_mid_answer_is_a_disconnection_and_the_next_get_reconnects(raw: Start) -> None:
    answers = iter([[answer(b"0123456789")[:-4], b"CLOSE"], None, [answer(b"ok")]])
    server = await raw(lambda head: next(answers))
    client = Client(yarl.URL(server.url), 5.0)
    with pytest.raises(ServerDisconnected):
        await client.get("/")
    with pytest.raises(ServerDisconnected):
        await client.get("/")  # closed before any answer
    assert (await client.get("/")).body == b"ok"
    client.close()


async def test_garbage_is_a_protocol_error(raw: Start) -> None:
    server = await raw(lambda head: [b"HTTP/1.1 2xx Nope\r\n\r\n"])
    client = Client(yarl.URL(server.url), 5.0)
    with pytest.raises(ProtocolError, match="not an HTTP answer"):
        await client.get("/")
    client.close()


async def test_a_silent_server_is_a_timeout_and_a_closed_port_a_refusal(raw: Start) -> None:
    answers = iter([[b"HANG"], [answer(b"ok")]])
    server = await raw(lambda head: next(answers))
    client = Client(yarl.URL(server.url), 0.3)
    with pytest.raises(TimeoutError, match="no answer within 0.3 s"):
        await client.get("/")
    assert (await client.get("/")).body == b"ok"  # on a new connection
    assert server.connections == 2
    client.close()
    with pytest.raises(ConnectionRefusedError):
        await Client(yarl.URL("http://127.0.0.1:1"), 1.0).get("/")


async def test_header_values_are_trimmed_and_trailers_do_not_replace_headers(raw: Start) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nX-Isr-Cache:  HIT  \r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Isr-Cache: MISS\r\n\r\n"
    server = await raw(lambda head: [chunked])
    client = Client(yarl.URL(server.url), 5.0)
    status, headers, body = await client.get("/")
    assert (status, headers["x-isr-cache"], body) == (200, "HIT", b"ok")
    client.close()


async def test_a_chunked_body_cut_short_is_a_disconnection_and_a_body_until_close_is_not(raw: Start) -> None:
    answers = iter([
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", b"CLOSE"],
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nX-A: 1\r\n\r\n", b"part one, ", b"part two", b"CLOSE"],
        [b"HTTP/1.1 200 OK\r\nX-A: 1", b"CLOSE"],  # closed inside the headers
    ])  # fmt: skip
    server = await raw(lambda head: next(answers))
    client = Client(yarl.URL(server.url), 5.0)
    with pytest.raises(ServerDisconnected):
        await client.get("/")
    assert (await client.get("/")).body == b"part one, part two"
    with pytest.raises(ServerDisconnected):
        await client.get("/")
    client.close()


async def test_an_answer_nobody_asked_for_drops_the_connection(raw: Start) -> None:
    answers = iter([[answer(b"one") + answer(b"extra")], [answer(b"two")]])
    server = await raw(lambda head: next(answers))
    client = Client(yarl.URL(server.url), 5.0)
    assert (await client.get("/")).body == b"one"
    assert (await client.get("/")).body == b"two"  # not "extra": on a new connection
    assert server.connections == 2
    client.close()


async def test_switching_protocols_and_endless_headers_are_protocol_errors(raw: Start) -> None:
    upgrade = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00"
    endless = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"y" * 70_000
    answers = iter([[upgrade], [endless], [answer(b"ok")]])
    server = await raw(lambda head: next(answers))
    client = Client(yarl.URL(server.url), 5.0)
    with pytest.raises(ProtocolError, match="switched protocols"):
        await client.get("/")
    with pytest.raises(ProtocolError, match="headers too long"):
        await client.get("/")
    assert (await client.get("/")).body == b"ok"
    client.close()
