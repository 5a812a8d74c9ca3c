"""What a function may not do to the server (SPEC §4), and template variables (SPEC §1).

Issue 9, items 5 and 8, against `isr serve` on tests/sites/hostile:
- processes a function starts end when its invocation is killed (timeout, crash,
  memory), when its worker is replaced, and when the server stops (SIGTERM, kill -9);
- framing and hop-by-hop headers a function sets are dropped and logged, never sent;
- printed output is kept up to 256 lines / 1 MB / 256 KB a line, then one marker line;
- a worker that stalls halfway through a reply holds up only its own invocation;
- props win over the engine's template variables, which are also `isr.*`;
- API functions awaiting `revalidate()` never deadlock their bundle (item 4).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e_support import Server, ServerError, Site, concurrently, data_path, embedded_data, wait_for
from functions_support import Call, assert_api_error, describe, pid_gone
from logs_support import wait_stored

GONE_WITHIN_S = 5.0
MARKER = "isr: output over the limit"
_names = itertools.count(1)


def hostile_server(tmp: Path) -> Server:
    server = Server(Site.copy("hostile", tmp))
    try:
        server.start()
    except ServerError as exc:  # another suite took the free port first: retry that once
        if "cannot listen" not in str(exc):
            raise
        server.start()
    return server


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = hostile_server(tmp_path_factory.mktemp("hostile"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(shared: Server, request: pytest.FixtureRequest) -> Iterator[Server]:
    with shared.watched(request) as server:
        yield server


@pytest.fixture
def own_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A server of the test's own, to stop or kill."""
    server = hostile_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()
        server.show_output_if_failed(request)


def marker_pid(server: Server, name: str) -> int:
    path = server.site.control_dir / f"mark-{name}"
    return int(wait_for(lambda: path.exists() and path.read_text(), 15, what=f"marker {name}"))


def assert_gone(pid: int, after: str) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while not pid_gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"{GONE_WITHIN_S}s after {after}, the function's process remains: {describe(pid)}")
        time.sleep(0.05)


def kill_if_left(pid: int) -> None:
    """Do not leave a `sleep 987` on the machine when a test fails."""
    try:
        if "sleep" in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def needs_worker_cgroups(server: Server) -> None:
    """Skip unless this machine gives each worker a cgroup (root, a writable cgroup mount)."""
    assert server.proc is not None
    folder = f"isr-{server.proc.pid}"
    if not any((Path(mount) / folder).is_dir() for mount in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup")):
        pytest.skip("workers get no cgroup on this machine")


def spawn(server: Server, then: str, daemon: bool = False) -> tuple[Any, int]:
    """GET /api/spawn: it starts `sleep 987`, then does `then`; (response, the sleep's pid)."""
    name = f"spawn-{next(_names)}"
    query = f"name={name}&then={then}" + ("&daemon=1" if daemon else "")
    resp = server.get(f"/api/spawn?{query}", timeout=30)
    return resp, marker_pid(server, name)


# ------------------------------------------------------------------ item 5a: processes


@pytest.mark.parametrize(
    ("then", "daemon", "status", "code"),
    [
        ("hang", False, 504, "FUNCTION_INVOCATION_TIMEOUT"),
        ("crash", False, 500, "FUNCTION_INVOCATION_FAILED"),
        ("memory", False, 500, "FUNCTION_INVOCATION_FAILED"),
        ("exit", False, 500, "FUNCTION_INVOCATION_FAILED"),
        ("hang", True, 504, "FUNCTION_INVOCATION_TIMEOUT"),
        ("exit", True, 500, "FUNCTION_INVOCATION_FAILED"),
        ("crash", True, 500, "FUNCTION_INVOCATION_FAILED"),
    ],
    ids=["timeout", "crash", "out-of-memory", "worker-replaced", "daemon-timeout", "daemon-worker-replaced", "daemon-crash"],
)
def test_processes_end_with_a_killed_invocation(server: Server, then: str, daemon: bool, status: int, code: str) -> None:
    if daemon and then == "crash":
        needs_worker_cgroups(server)  # the worker died first: only its cgroup still lists the daemon
    resp, pid = spawn(server, then, daemon)
    try:
        assert_api_error(resp, status, code, server)
        assert_gone(pid, f"its invocation ended ({then})")
    finally:
        kill_if_left(pid)
    assert server.get("/api/ok").status == 200


@pytest.mark.parametrize("daemon", [False, True], ids=["child", "daemon"])
def test_processes_end_when_the_server_stops(own_server: Server, daemon: bool) -> None:
    resp, pid = spawn(own_server, "return", daemon)
    try:
        assert resp.status == 200, resp.describe()
        assert not pid_gone(pid), "a finished invocation's process may run until its worker goes"
        assert own_server.proc is not None
        own_server.proc.send_signal(signal.SIGTERM)  # the server alone, not its process group
        own_server.proc.wait(15)
        assert_gone(pid, "the server stopped on SIGTERM")
    finally:
        kill_if_left(pid)


@pytest.mark.parametrize("daemon", [False, True], ids=["child", "daemon"])
def test_processes_end_when_the_server_is_killed(own_server: Server, daemon: bool) -> None:
    if daemon:
        needs_worker_cgroups(own_server)  # the workers die with the server: only cgroups still list daemons
    resp, pid = spawn(own_server, "return", daemon)
    try:
        assert resp.status == 200, resp.describe()
        assert own_server.proc is not None
        os.kill(own_server.proc.pid, signal.SIGKILL)
        own_server.proc.wait(15)
        assert_gone(pid, "kill -9 of the server")
    finally:
        kill_if_left(pid)


# ------------------------------------------------------------------- item 5b: headers

FRAMING = [
    ("Content-Length", "1000"),
    ("transfer-encoding", "chunked"),
    ("Connection", "upgrade, x-function"),
    ("Keep-Alive", "timeout=999"),
    ("UPGRADE", "websocket"),
]


def dropped_line(server: Server, path: str, name: str) -> list[dict[str, Any]]:
    needle = f"header {name!r} dropped"
    return wait_stored(
        server.site, lambda r: r.get("path") == path and any(needle in line for line in r.get("lines") or []),
        what=f"a log line saying {name} was dropped",
    )  # fmt: skip


@pytest.mark.parametrize(("name", "value"), FRAMING, ids=[n.lower() for n, _ in FRAMING])
def test_api_framing_headers_are_dropped_and_logged(server: Server, name: str, value: str) -> None:
    resp = server.get(f"/api/framing?name={name}&value={value.replace(' ', '%20')}", timeout=5)
    assert resp.status == 200, resp.describe()
    assert resp.body == b"hi", resp.describe()
    assert resp.header("x-kept") == "yes", resp.describe()
    assert resp.header(name) != value, f"the function's {name} was sent:\n{resp.describe()}"
    assert resp.header("content-length") == "2", resp.describe()
    assert resp.header("transfer-encoding") is None, resp.describe()
    dropped_line(server, "/api/framing", name)


def test_ssr_framing_headers_are_dropped_and_logged(server: Server) -> None:
    resp = server.get("/ssr_framing", timeout=5)
    assert resp.status == 200, resp.describe()
    assert "SSR-FRAMING" in resp.text
    assert resp.header("x-kept") == "yes", resp.describe()
    assert resp.header("content-length") == str(len(resp.body)), resp.describe()
    assert resp.header("transfer-encoding") is None and resp.header("connection") != "close", resp.describe()
    for name in ("content-length", "Transfer-Encoding", "CONNECTION"):
        dropped_line(server, "/ssr_framing", name)


# ------------------------------------------------------------------- item 5c: printing


def flood_record(server: Server, query: str) -> list[str]:
    """The lines kept of one call of /api/flood, after its first ("tag:…")."""
    tag = f"flood-{next(_names)}"
    resp = server.get(f"/api/flood?tag={tag}&{query}", timeout=30)
    assert resp.status == 200, resp.describe()
    records = wait_stored(server.site, lambda r: (r.get("lines") or [""])[0] == f"tag:{tag}", what=f"the record of {tag}")
    lines: list[str] = records[-1]["lines"]
    return lines[1:]


def test_printed_lines_are_kept_up_to_256_then_one_marker(server: Server) -> None:
    started = time.monotonic()
    lines = flood_record(server, "lines=100000&size=20")
    assert len(lines) <= 256 - 1, len(lines)  # the tag line is one of the 256
    assert lines[-1].startswith(MARKER), lines[-3:]
    assert [line[:6] for line in lines[:-1]] == [f"{i:06d}" for i in range(len(lines) - 1)], "kept lines are the first ones"
    assert sum(MARKER in line for line in lines) == 1
    assert time.monotonic() - started < 20


def test_printed_bytes_are_kept_up_to_1_mb(server: Server) -> None:
    lines = flood_record(server, "lines=50&size=100000")
    assert lines[-1].startswith(MARKER), lines[-1][:200]
    assert len(lines) - 1 <= 10, f"{len(lines) - 1} lines of 100 KB kept: over 1 MB"
    assert len(lines) - 1 >= 9, "lines under the 1 MB budget were dropped"


def test_a_huge_unended_line_is_cut_with_the_marker(server: Server) -> None:
    # 50 MB printed with no newline: the worker keeps 256 KB of it, the server gets no more.
    lines = flood_record(server, "huge=50000000")
    assert lines[0].startswith("hhhh"), lines[0][:50]
    assert lines[-1].startswith(MARKER), [line[:80] for line in lines]
    assert len(lines) == 2


# -------------------------------------------------------------- item 5d: large replies


def test_a_stalled_reply_holds_up_only_its_own_invocation(server: Server) -> None:
    stalled = Call(server, "/api/stall")
    wait_for(lambda: (server.site.control_dir / "mark-stall").exists(), 15, what="the stall to begin")
    started = time.monotonic()
    resp = server.get("/api/ok", timeout=10)
    assert resp.status == 200, resp.describe()
    assert time.monotonic() - started < 1.5, "another request waited for a stalled worker's reply"
    assert_api_error(stalled.response(15), 504, "FUNCTION_INVOCATION_TIMEOUT", server)
    assert server.get("/api/ok").status == 200


# -------------------------------------------------------------- item 8: template variables

VALUE = re.compile(r"^([A-Z-]+)=\[(.*)\]$", re.M)


def template_values(html: str) -> dict[str, Any]:
    return {name: json.loads(value) for name, value in VALUE.findall(html)}


def test_props_win_over_engine_variables(server: Server) -> None:
    first = server.get("/vars/mine")
    assert first.status == 200, first.describe()
    fallback = template_values(first.text)  # one fallback page per route: its path may be generic
    assert fallback["FALLBACK"] is True and fallback["ISR-FALLBACK"] is True, first.text
    assert fallback["PATH"] == fallback["ISR-PATH"] and fallback["PARAMS"] == fallback["ISR-PARAMS"], first.text
    page = wait_for(lambda: (r := server.get("/vars/mine")).status == 200 and "__ISR_DATA__" in r.text and r, 15,
                    what="the generated page")  # fmt: skip
    props = embedded_data(page.text)["props"]
    values = template_values(page.text)
    assert values == {
        "PATH": ["a", "b"], "PARAMS": "own-params", "FALLBACK": False,
        "ISR-PATH": "/vars/mine", "ISR-PARAMS": {"name": "mine"}, "ISR-FALLBACK": False,
    }, page.text  # fmt: skip
    as_json = server.get(data_path(embedded_data(page.text)["build_id"], "/vars/mine")).json()
    assert as_json["props"] == props == {"path": ["a", "b"], "params": "own-params"}
    assert values["PATH"] == as_json["props"]["path"], "the HTML and the JSON variant disagree on `path`"


def test_the_404_page_has_the_engine_variables(server: Server) -> None:
    page = wait_for(lambda: (r := server.get("/vars/missing")).status == 404 and r, 15, what="the cached 404")
    assert "HOSTILE-404" in page.text, page.describe()
    assert template_values(page.text) == {"ISR-PATH": "/vars/missing", "ISR-FALLBACK": False}, page.text


# ------------------------------------------------------------------ item 4: webhooks


def test_concurrent_webhooks_awaiting_revalidate_never_deadlock(server: Server) -> None:
    """/api/webhook and /target share one bundle of 2 workers; 5 webhooks at once all complete."""
    before = server.page("/target").generation
    started = time.monotonic()
    answers = concurrently([lambda: server.request("POST", "/api/webhook", timeout=30)] * 5)
    elapsed = time.monotonic() - started
    for resp in answers:
        assert resp.status == 200, f"{resp.describe()}\n{server.output()}"
        assert "/target" in json.dumps(resp.json())
    assert elapsed < 5, f"5 webhooks took {elapsed:.1f}s"
    assert server.page("/target").generation != before
