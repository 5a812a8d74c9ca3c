"""Live logs (issue 5): `isr logs --follow` and `GET /_isr/logs?follow=1` (Server-Sent
Events) through a real server; the follower reconnects when the server restarts."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import NO_STORE, TRACEBACK, Server, Site, free_port
from logs_support import (
    BOOM,
    HELLO,
    ISR,
    OTHER,
    SSE,
    Follower,
    PinnedServer,
    assert_record_shape,
    has_line,
    logs_site,
    unique,
)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return logs_site(tmp_path)


@pytest.fixture
def followers() -> Iterator[list[Follower]]:
    started: list[Follower] = []
    yield started
    for follower in started:
        follower.kill()


def _serve(server: Server, request: pytest.FixtureRequest) -> Iterator[Server]:
    """Start, and at teardown stop gracefully (open log streams end with the server)."""
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.show_output_if_failed(request)


@pytest.fixture
def server(site: Site, request: pytest.FixtureRequest) -> Iterator[Server]:
    yield from _serve(Server(site), request)


@pytest.fixture
def pinned(site: Site, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A server that a restart brings back on the same port."""
    yield from _serve(PinnedServer(site), request)


def hello_probe(server: Server) -> tuple[Any, Any]:
    def poke(tag: str) -> None:
        assert server.get(f"/api/hello?tag={tag}").status == 200

    return poke, lambda record, tag: has_line(record, f"hello-line-1:{tag}")


# ------------------------------------------------------------------ isr logs --follow


def test_follow_prints_new_records_and_reconnects_after_a_restart(
    pinned: Server, followers: list[Follower]
) -> None:
    follower = Follower(pinned.site, "--url", pinned.url)
    followers.append(follower)
    first = follower.connect(*hello_probe(pinned))
    assert_record_shape(first)
    assert first["function"] == HELLO and first["kind"] == "api", first

    tag = unique("live")
    assert pinned.page(f"/isr/{tag}").cache == "MISS"
    record = follower.wait(
        lambda r: r["path"] == f"/isr/{tag}", 3, what=f"the record of /isr/{tag}"
    )
    assert_record_shape(record)
    assert (record["function"], record["kind"], record["cache"]) == (ISR, "render", "MISS"), record
    assert record["lines"] == [f"isr-print:{tag}", f"isr-stderr:{tag}"], record
    old_instance = record["instance"]

    pinned.kill9()  # the server goes away, a new one comes up on the same URL
    pinned.start()
    again = follower.connect(*hello_probe(pinned), timeout=20)
    assert again["instance"] != old_instance, (
        "the record after the restart comes from the new server"
    )
    tag = unique("after")
    pinned.page(f"/api/other?tag={tag}")
    record = follower.wait(
        lambda r: has_line(r, f"other-print:{tag}"), 3, what="a record after the reconnect"
    )
    assert record["function"] == OTHER, record
    assert follower.proc.poll() is None, follower.describe()

    code = follower.interrupt()
    assert code in (0, 130), f"Ctrl-C ended `isr logs --follow` with {code}\n{follower.describe()}"
    assert TRACEBACK not in "\n".join(follower.err), follower.describe()


def test_follow_applies_its_filters(server: Server, followers: list[Follower]) -> None:
    only_other = Follower(server.site, "--url", server.url, "--function", OTHER)
    only_errors = Follower(server.site, "--url", server.url, "--errors")
    followers += [only_other, only_errors]

    def poke_other(tag: str) -> None:
        server.get(f"/api/other?tag={tag}")

    def poke_boom(tag: str) -> None:
        server.get(f"/api/boom/{tag}")

    only_other.connect(poke_other, lambda r, tag: has_line(r, f"other-print:{tag}"))
    only_errors.connect(poke_boom, lambda r, tag: r["path"] == f"/api/boom/{tag}")

    tag = unique("filtered")
    server.page(f"/api/hello?tag={tag}")
    server.page(f"/isr/{tag}")
    server.page(f"/api/other?tag={tag}")
    assert server.get(f"/api/boom/{tag}").status == 500
    only_other.wait(lambda r: has_line(r, f"other-print:{tag}"), 3, what="the /api/other record")
    only_errors.wait(lambda r: r["path"] == f"/api/boom/{tag}", 3, what="the failed call's record")

    assert all(r["function"] == OTHER for r in only_other.records()), only_other.describe()
    errors = only_errors.records()
    assert all(r["status"] >= 500 and r["error"] for r in errors), only_errors.describe()
    assert all(r["function"] == BOOM for r in errors), only_errors.describe()


def test_follow_without_a_server_waits_and_ctrl_c_stops_it(
    site: Site, followers: list[Follower]
) -> None:
    follower = Follower(site, "--url", f"http://127.0.0.1:{free_port()}")
    followers.append(follower)
    deadline = time.monotonic() + 10
    while not follower.err and time.monotonic() < deadline:
        assert follower.proc.poll() is None, (
            f"the follower gave up on a server that is not up yet\n{follower.describe()}"
        )
        time.sleep(0.05)
    assert follower.err, f"no word that it waits for the server\n{follower.describe()}"
    assert TRACEBACK not in "\n".join(follower.err), follower.describe()
    assert follower.proc.poll() is None, follower.describe()
    code = follower.interrupt()
    assert code in (0, 130), follower.describe()
    assert TRACEBACK not in "\n".join(follower.err), follower.describe()


# -------------------------------------------------------------------- raw SSE client


def test_sse_stream_carries_records_and_honours_its_query(server: Server) -> None:
    everything = SSE(server.port)
    only_other = SSE(server.port, {"function": OTHER})
    only_errors = SSE(server.port, {"errors": "1"})
    try:
        for stream in (everything, only_other, only_errors):
            assert stream.status == 200, stream.status
            assert stream.headers.get("content-type", "").startswith("text/event-stream"), (
                stream.headers
            )
            assert stream.headers.get("cache-control") == NO_STORE, stream.headers
            stream.wait_comment("connected")

        tag = unique("sse")
        server.page(f"/api/hello?tag={tag}")
        server.page(f"/api/other?tag={tag}")
        assert server.get(f"/api/boom/{tag}").status == 500

        events = everything.events_until(lambda e: e["path"] == f"/api/boom/{tag}")
        assert [e["function"] for e in events] == [HELLO, OTHER, BOOM], events
        for event in events:
            assert_record_shape(event)
        assert events[0]["lines"] == [f"hello-line-1:{tag}", "hello-line-2"], events[0]
        assert (events[2]["status"], events[2]["error"]) == (500, "FUNCTION_INVOCATION_FAILED"), (
            events[2]
        )

        event = only_other.next_event()
        assert event["function"] == OTHER and has_line(event, f"other-print:{tag}"), event
        event = only_errors.next_event()
        assert event["path"] == f"/api/boom/{tag}" and event["status"] == 500, event
    finally:
        for stream in (everything, only_other, only_errors):
            stream.close()

    # recent=N: the last N matching records first, then live ones
    older, newer = unique("older"), unique("newer")
    server.page(f"/api/other?tag={older}")
    server.page(f"/api/other?tag={newer}")
    server.page(f"/api/hello?tag={newer}")
    backlog = SSE(server.port, {"recent": "2", "function": OTHER})
    try:
        assert backlog.status == 200
        backlog.wait_comment("connected")
        first, second = backlog.next_event(), backlog.next_event()
        assert has_line(first, f"other-print:{older}") and has_line(
            second, f"other-print:{newer}"
        ), (first, second)
        late = unique("late")
        server.page(f"/api/other?tag={late}")
        event = backlog.next_event()
        assert has_line(event, f"other-print:{late}"), event
    finally:
        backlog.close()


def test_server_stops_promptly_with_a_log_stream_open(server: Server) -> None:
    stream = SSE(server.port)
    try:
        stream.wait_comment("connected")
        assert server.proc is not None
        stopping = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - stopping
        code = server.proc.poll()
    finally:
        server.kill9()  # do not wait for it any longer
        stream.close()
    assert code is not None, (
        f"`isr serve` was still running 5 s after SIGTERM because a log stream (dashboard or "
        f"`isr logs --follow`) was open (it stops in about a second without one)\n{server.output()}"
    )
    assert code == 0, f"exit {code} after {took:.1f}s\n{server.output()}"


def test_follow_with_a_url_without_scheme_says_so(site: Site) -> None:
    """`--url localhost:3000` (no http://) is bad input: a clear error, not a silent wait."""
    follower = Follower(site, "--url", "localhost:3000")
    try:
        try:
            code: int | None = follower.proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        assert code is not None, (
            "`isr logs --follow --url localhost:3000` still runs after 5 s instead of saying the URL is "
            f"malformed\n{follower.describe()}"
        )
        assert code != 0 and TRACEBACK not in "\n".join(follower.err), follower.describe()
        assert "localhost:3000" in "\n".join(follower.err), follower.describe()
    finally:
        follower.kill()
