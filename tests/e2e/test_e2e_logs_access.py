"""Who may see the dashboard, the logs and the metrics (issue 5): a server listening
beyond loopback asks for the revalidate token (Bearer header, or the cookie the
dashboard's token form sets); on loopback it does not.

The logs site's .env sets ISR_REVALIDATE_TOKEN; the server below listens on 0.0.0.0
and is reached at 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from e2e_support import TRACEBACK, Server, Site, request
from prometheus_client.parser import text_string_to_metric_families
from logs_support import SSE, TOKEN, Follower, has_line, logs_site, unique

ADMIN = ("/_isr/", "/_isr", "/_isr/metrics", "/_isr/logs", "/_isr/stats", "/_isr/logs?follow=1")


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(logs_site(tmp_path_factory.mktemp("public")), extra_args=("--host", "0.0.0.0"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return logs_site(tmp_path)


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
    assert public.get("/api/hello").status == 200, "pages and functions stay public"
    for path in ADMIN:
        status, body, _ = get(public, path)
        assert status == 401, f"GET {path} without the token: {status}"
        assert TOKEN not in body and TRACEBACK not in body, body
        for wrong in (
            bearer("wrong-token"),
            bearer(""),
            {"Authorization": TOKEN},
            {"Cookie": "isr_token=wrong"},
        ):
            status, _, _ = get(public, path, wrong)
            assert status == 401, f"GET {path} with {wrong}: {status}"
        status, _, headers = get(public, path, bearer())
        assert status == 200, f"GET {path} with the Bearer token: {status} {headers}"

    status, html, _ = get(public, "/_isr/")
    assert "<form" in html and "token" in html.lower(), (
        f"no token form on the 401 dashboard:\n{html[:1500]}"
    )

    metrics = public.get("/_isr/metrics", headers=bearer())
    names = {f.name for f in text_string_to_metric_families(metrics.text)}
    assert "isr_requests" in names and "isr_invocations" in names, names


def test_the_token_form_sets_a_cookie_that_opens_the_admin_pages(public: Server) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    wrong = public.request(
        "POST", "/_isr/login", headers=form, body=urlencode({"token": "nope"}).encode()
    )
    assert wrong.status in (401, 403), wrong.describe()
    assert "isr_token" not in (wrong.header("set-cookie") or ""), wrong.describe()

    resp = public.request(
        "POST", "/_isr/login", headers=form, body=urlencode({"token": TOKEN}).encode()
    )
    assert resp.status in (200, 302, 303), resp.describe()
    cookie_header = resp.header("set-cookie") or ""
    assert cookie_header.startswith("isr_token="), resp.describe()
    assert "httponly" in cookie_header.lower(), (
        f"the token cookie must not be readable by scripts: {cookie_header}"
    )
    if resp.status in (302, 303):
        assert resp.header("location") in ("/_isr/", "/_isr"), resp.describe()
    cookie = {"Cookie": cookie_header.split(";", 1)[0]}
    for path in ADMIN:
        status, _, _ = get(public, path, cookie)
        assert status == 200, f"GET {path} with the cookie of the token form: {status}"
    dashboard = public.get("/_isr/", headers=cookie)
    assert 'id="stream"' in dashboard.text and 'id="filter"' in dashboard.text, dashboard.text[
        :1500
    ]


def test_follow_beyond_loopback_needs_the_token(public: Server, site: Site) -> None:
    started = time.monotonic()
    refused = site.cli("logs", "--follow", "--json", "--url", public.url, timeout=30)
    assert refused.returncode != 0, refused
    assert TRACEBACK not in refused.stderr and "token" in refused.stderr.lower(), refused.stderr
    assert time.monotonic() - started < 15

    follower = Follower(site, "--url", public.url, "--token", TOKEN)
    try:

        def poke(tag: str) -> None:
            request(public.port, f"/api/hello?tag={tag}")

        record = follower.connect(poke, lambda r, tag: has_line(r, f"hello-line-1:{tag}"))
        assert record["path"] == "/api/hello", record
    finally:
        follower.kill()


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
