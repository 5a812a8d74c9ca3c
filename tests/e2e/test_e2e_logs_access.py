"""Who may see the dashboard, the logs and the metrics (issue 5, rule of issue 9): a
request from beyond loopback needs the revalidate token (Bearer header, or the session
cookie the dashboard's sign-in form sets); a loopback request naming a loopback host
does not, whatever address the server listens on. test_e2e_access.py tests the rule in
detail (proxy headers, sessions, throttling).

The logs site's .env sets ISR_REVALIDATE_TOKEN; the server below listens on 0.0.0.0.
Requests "from beyond loopback" name another host (`Host: isr.example`, as a browser
elsewhere does) or, where the machine has one, arrive at its own non-loopback address.
Wrong tokens count per client address: this module sends fewer than five to `public`.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from e2e_support import TRACEBACK, Server, Site, request
from logs_support import SSE, TOKEN, Follower, has_line, logs_site, unique
from prometheus_client.parser import text_string_to_metric_families

ADMIN = ("/_isr/", "/_isr", "/_isr/metrics", "/_isr/logs", "/_isr/stats", "/_isr/logs?follow=1")
BEYOND = {"Host": "isr.example"}  # a request that does not name a loopback host


def outward_address() -> str | None:
    """This machine's non-loopback IPv4 address, if it has one (the UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(logs_site(tmp_path_factory.mktemp("public")), extra_args=("--host", "0.0.0.0")).running() as server:
        yield server


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return logs_site(tmp_path)


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {**BEYOND, "Authorization": f"Bearer {token}"}


def get(
    server: Server, path: str, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    """GET that does not wait for the end of an SSE stream (status and headers only then)."""
    if "follow=1" in path:
        stream = SSE(
            server.port,
            dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&") if p != "follow=1"),
            headers,
        )
        try:
            return stream.status, "", stream.headers
        finally:
            if stream.status == 200:
                stream.close()
            else:
                stream.response.read()
                stream.response.close()
                stream.conn.close()
    resp = server.get(path, headers=headers)
    return resp.status, resp.text, resp.headers


def test_beyond_loopback_every_admin_page_needs_the_token(public: Server) -> None:
    assert public.get("/api/hello", headers=BEYOND).status == 200, "pages and functions stay public"
    for path in ADMIN:
        status, body, _ = get(public, path, BEYOND)
        assert status == 401, f"GET {path} without the token: {status}"
        assert TOKEN not in body and TRACEBACK not in body, body
        status, _, _ = get(public, path, {**BEYOND, "Cookie": "isr_session=wrong"})
        assert status == 401, f"GET {path} with a wrong session: {status}"
        status, _, headers = get(public, path, bearer())
        assert status == 200, f"GET {path} with the Bearer token: {status} {headers}"
    for wrong in (bearer("wrong-token"), bearer(""), {**BEYOND, "Authorization": TOKEN}):
        status, _, _ = get(public, "/_isr/stats", wrong)
        assert status == 401, f"GET /_isr/stats with {wrong}: {status}"

    status, html, _ = get(public, "/_isr/", BEYOND)
    assert "<form" in html and "token" in html.lower(), (
        f"no token form on the 401 dashboard:\n{html[:1500]}"
    )

    metrics = public.get("/_isr/metrics", headers=bearer())
    names = {f.name for f in text_string_to_metric_families(metrics.text)}
    assert "isr_requests" in names and "isr_invocations" in names, names


def test_a_request_to_a_non_loopback_address_needs_the_token(public: Server) -> None:
    """Arriving at the machine's own outward address: the peer is not loopback, whatever Host says."""
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    for path in ("/_isr/stats", "/_isr/metrics", "/_isr/"):
        for headers in ({"Host": f"127.0.0.1:{public.port}"}, {"Host": "localhost"}, bearer()):
            conn = http.client.HTTPConnection(address, public.port, timeout=10)
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            finally:
                conn.close()
            expected = 200 if "Authorization" in headers else 401
            assert resp.status == expected, f"GET {path} at {address} with {headers}: {resp.status} {body[:300]!r}"


def test_the_token_form_sets_a_cookie_that_opens_the_admin_pages(public: Server) -> None:
    form = {**BEYOND, "Content-Type": "application/x-www-form-urlencoded"}
    wrong = public.request(
        "POST", "/_isr/login", headers=form, body=urlencode({"token": "nope"}).encode()
    )
    assert wrong.status in (401, 403), wrong.describe()
    assert "isr_session" not in (wrong.header("set-cookie") or ""), wrong.describe()

    resp = public.request(
        "POST", "/_isr/login", headers=form, body=urlencode({"token": TOKEN}).encode()
    )
    assert resp.status in (200, 302, 303), resp.describe()
    cookie_header = resp.header("set-cookie") or ""
    assert cookie_header.startswith("isr_session="), resp.describe()
    assert TOKEN not in cookie_header, f"the cookie must not be the token: {cookie_header}"
    assert "httponly" in cookie_header.lower(), (
        f"the session cookie must not be readable by scripts: {cookie_header}"
    )
    if resp.status in (302, 303):
        assert resp.header("location") in ("/_isr/", "/_isr"), resp.describe()
    cookie = {**BEYOND, "Cookie": cookie_header.split(";", 1)[0]}
    for path in ADMIN:
        status, _, _ = get(public, path, cookie)
        assert status == 200, f"GET {path} with the cookie of the token form: {status}"
    dashboard = public.get("/_isr/", headers=cookie)
    assert 'id="stream"' in dashboard.text and 'id="filter"' in dashboard.text, dashboard.text[
        :1500
    ]


def test_follow_beyond_loopback_needs_the_token(public: Server, site: Site) -> None:
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to reach the server from beyond loopback")
    url = f"http://{address}:{public.port}"
    started = time.monotonic()
    refused = site.cli("logs", "--follow", "--json", "--url", url, timeout=30)
    assert refused.returncode != 0, refused
    assert TRACEBACK not in refused.stderr and "token" in refused.stderr.lower(), refused.stderr
    assert time.monotonic() - started < 15

    follower = Follower(site, "--url", url, "--token", TOKEN)
    try:

        def poke(tag: str) -> None:
            request(public.port, f"/api/hello?tag={tag}")

        record = follower.connect(poke, lambda r, tag: has_line(r, f"hello-line-1:{tag}"))
        assert record["path"] == "/api/hello", record
    finally:
        follower.kill()


def test_any_listener_is_open_to_a_loopback_request(public: Server) -> None:
    """The rule is per request: 0.0.0.0 reached at 127.0.0.1, naming it, needs no token."""
    for path in ADMIN:
        status, _, _ = get(public, path)
        assert status == 200, f"GET {path} at 127.0.0.1 of a 0.0.0.0 server: {status}"


def test_on_loopback_no_token_is_needed(server: Server) -> None:
    for path in ADMIN:
        status, _, _ = get(server, path)
        assert status == 200, f"GET {path} on a loopback server: {status}"
    tag = unique("loop")
    stream = SSE(server.port)
    try:
        stream.wait_comment("connected")
        server.page(f"/api/hello?tag={tag}")
        event = stream.events_until(lambda e: has_line(e, f"hello-line-1:{tag}"))[-1]
        assert event["path"] == "/api/hello"
    finally:
        stream.close()
        server.stop()
