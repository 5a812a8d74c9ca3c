"""What a client may not do to the server (issue 9, items 3 and 6): bytes that are not
UTF-8, a query that decodes to a line break, oversized headers, huge revalidation calls,
and connections that stall halfway through their headers or body."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e_support import Server, Site, raw_request, wait_for

TOKEN = "e2e-hostile-token"
STALLED = 1_000  # connections that send half a request and stall
SLOW_BODIES = 50  # requests whose body stops arriving
TIMEOUT_SLACK_S = 20.0  # beyond the 60 s header/body timeouts


@pytest.fixture(params=["C parser", "pure-Python parser"])
def hserver(request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server on the basic site, with each of aiohttp's HTTP parsers."""
    if request.param == "pure-Python parser":
        monkeypatch.setenv("AIOHTTP_NO_EXTENSIONS", "1")
    yield from _serve(tmp_path, request)


@pytest.fixture
def cserver(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Server]:
    """A server with the default (C) parser: the timeouts are the connection's, not the parser's."""
    yield from _serve(tmp_path, request)


def _serve(tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[Server]:
    site = Site.copy("basic", tmp_path)
    (site.root / ".env").write_text(f"ISR_REVALIDATE_TOKEN={TOKEN}\n", encoding="utf-8")
    server = Server(site).start()
    yield server
    server.stop()
    server.show_output_if_failed(request)


def raw_get(server: Server, target: bytes, *headers: bytes) -> tuple[int, dict[str, str], bytes]:
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: localhost", *headers, b"Connection: close", b"", b""]
    return raw_request(server.port, b"\r\n".join(lines))


def test_bytes_that_are_not_utf8_get_400_and_logs_stay_readable(hserver: Server) -> None:
    assert raw_get(hserver, b"/blog/\xff")[0] == 400
    assert raw_get(hserver, b"/ssr", b"Cookie: a=\xff")[0] == 400
    assert raw_get(hserver, b"/api/ping", b"X-Thing: \xff")[0] == 400
    hserver.page("/about")
    assert hserver.page("/about").cache == "HIT"
    assert raw_get(hserver, b"/about", b"X-Thing: \xff")[0] == 400  # a HIT too
    assert raw_get(hserver, b"/about", "X-Thing: caf\u00e9".encode())[0] == 200  # UTF-8 beyond ASCII is fine
    body = b'{"tags": ["t"]}'
    status, _, answer = raw_request(
        hserver.port,
        b"POST /_isr/revalidate HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \xff\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body),
    )
    assert status == 401, answer
    logs = hserver.get("/_isr/logs")
    assert logs.status == 200 and isinstance(logs.json(), list)
    proc = hserver.site.cli("logs", str(hserver.site.root), "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in hserver.output()
    assert hserver.get("/about").status == 200  # and the server keeps serving


def test_a_trailing_slash_redirect_re_encodes_the_query(hserver: Server) -> None:
    status, headers, _ = raw_get(hserver, b"/blog/?x=%0d%0a&y=a%20b")
    assert status == 308 and headers["location"] == "/blog?x=%0d%0a&y=a%20b"


def test_oversized_headers_get_431(hserver: Server) -> None:
    assert raw_get(hserver, b"/about", b"X-One: " + b"a" * 17_000)[0] == 431
    many = [b"X-Part-%d: " % n + b"b" * 11_000 for n in range(3)]
    assert raw_get(hserver, b"/about", *many)[0] == 431
    assert raw_get(hserver, b"/about", b"X-Fine: " + b"c" * 8_000)[0] == 200


def revalidate(server: Server, body: dict[str, Any], timeout: float = 60) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return server.request("POST", "/_isr/revalidate", body=json.dumps(body).encode(), headers=headers, timeout=timeout)


def test_revalidation_calls_are_capped_and_never_block_other_requests(hserver: Server) -> None:
    assert revalidate(hserver, {"paths": [f"/nope/{n}" for n in range(10_001)]}).status == 413
    assert revalidate(hserver, {"tags": [f"t{n}" for n in range(1_001)]}).status == 413
    hserver.page("/about")
    answers: list[Any] = []
    call = threading.Thread(target=lambda: answers.append(revalidate(hserver, {"paths": [f"/nope/{n}" for n in range(10_000)]})))
    call.start()
    slowest = 0.0
    while call.is_alive():
        slowest = max(slowest, hserver.get("/about").elapsed)
    call.join()
    assert answers[0].status == 207 and len(answers[0].json()["errors"]) == 10_000
    assert slowest < 0.5, f"a HIT waited {slowest:.2f} s behind the revalidation call"


def hit_rate(server: Server, seconds: float) -> float:
    """HITs per second over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.request("GET", "/about")
        response = conn.getresponse()
        response.read()
        assert response.status == 200 and response.getheader("x-isr-cache") == "HIT"
        done += 1
    conn.close()
    return done / seconds


def stalled_connection(server: Server, half: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(half)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.0)
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def test_stalled_clients_keep_hits_fast_and_are_closed_by_the_timeouts(cserver: Server) -> None:
    cserver.page("/about")
    cserver.page("/about")
    unloaded = hit_rate(cserver, 2.0)
    started = time.monotonic()
    stalled = [stalled_connection(cserver, b"GET /about HTTP/1.1\r\nHost: localhost\r\nX-Half: ") for _ in range(STALLED)]
    slow = [
        stalled_connection(cserver, b"POST /api/ping HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        for _ in range(SLOW_BODIES)
    ]
    loaded = hit_rate(cserver, 2.0)
    print(f"HITs/s over one connection: {unloaded:.0f} unloaded, {loaded:.0f} beside {STALLED} stalled + {SLOW_BODIES} slow bodies")
    assert loaded >= unloaded / 2
    everyone = stalled + slow
    wait_for(
        lambda: all(closed_by_server(sock) for sock in everyone), timeout=60 + TIMEOUT_SLACK_S, interval=1.0,
        what="the server closing every stalled connection",
    )
    assert time.monotonic() - started >= 55  # closed by the timeouts, not at once
    for sock in everyone:
        sock.close()
    assert cserver.get("/about").status == 200
