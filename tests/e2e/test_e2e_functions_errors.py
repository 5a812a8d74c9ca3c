"""Function failures and their answers, limits, throttling and worker pools (issue 3, items 1-3).

One server on tests/sites/functions for the module; each test uses its own functions,
and every test leaves the server answering normally (that is part of what it checks).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any

from e2e_support import Response, Server, concurrently, wait_for
from functions_support import (
    Call,
    api_ok,
    assert_api_error,
    assert_page_error,
    fsite_of,
    pid_gone,
    shared,  # noqa: F401  (fixture)
    wait_pid_file,
)

TIMEOUT = "FUNCTION_INVOCATION_TIMEOUT"
FAILED = "FUNCTION_INVOCATION_FAILED"
MAX_DURATION_S = 2.0  # isr.json: pages/api/timeout/*.py, pages/trouble.py
LATE_S = 1.2  # "within about a second of the deadline"


def oom_mentions(server: Server) -> int:
    return server.output().lower().count("out of memory")


def expect_more(counter: Callable[[], int], before: int, what: str) -> None:
    wait_for(lambda: counter() > before, 5, what=what)


# ---------------------------------------------------------------- exceptions


def test_api_function_that_raises_gets_500_and_the_traceback_goes_to_the_log(shared: Server) -> None:
    first = assert_api_error(shared.get("/api/fail?mode=raise"), 500, FAILED, shared)
    second = assert_api_error(shared.get("/api/fail?mode=raise"), 500, FAILED, shared)
    assert first["id"] != second["id"], "two failures share one error id"
    wait_for(lambda: "RuntimeError: api failed on purpose" in shared.output(), 5, what="the error in the server log")
    assert api_ok(shared, "/api/fail?mode=ok")["ok"] is True


def test_sync_api_function_that_raises_gets_500(shared: Server) -> None:
    assert_api_error(shared.get("/api/sync_fail"), 500, FAILED, shared)
    assert api_ok(shared, "/api/sync")["sync"] is True


def test_page_that_raises_gets_an_html_500(shared: Server) -> None:
    assert_page_error(shared.get("/trouble?mode=raise"), 500, FAILED, shared)
    assert "TROUBLE-OK" in shared.page("/trouble").text


def test_handler_that_returns_without_responding_gets_502(shared: Server) -> None:
    resp = shared.get("/api/fail?mode=noresponse")
    assert_api_error(resp, 502, "NO_RESPONSE_FROM_FUNCTION", shared)
    assert resp.header("x-started") is None, "headers of an unsent response reached the client"


# -------------------------------------------------------------------- memory


def test_api_function_over_its_1024_mb_fails_and_the_log_says_out_of_memory(shared: Server) -> None:
    before = oom_mentions(shared)
    assert_api_error(shared.get("/api/fail?mode=oom&mb=2048"), 500, FAILED, shared)
    expect_more(lambda: oom_mentions(shared), before, "'out of memory' in the server log")
    # the function works again, and may use memory below its limit
    data = api_ok(shared, "/api/fail?mode=oom&mb=600")
    assert data["allocated"] == 600 * 1024**2


def test_api_function_over_its_256_mb_fails_and_the_log_says_out_of_memory(shared: Server) -> None:
    before = oom_mentions(shared)
    assert_api_error(shared.get("/api/mem256?mb=600"), 500, FAILED, shared)
    expect_more(lambda: oom_mentions(shared), before, "'out of memory' in the server log")
    assert api_ok(shared, "/api/mem256?mb=100")["allocated"] == 100 * 1024**2


def test_page_over_its_memory_gets_an_html_500(shared: Server) -> None:
    before = oom_mentions(shared)
    assert_page_error(shared.get("/trouble?mode=oom"), 500, FAILED, shared)
    expect_more(lambda: oom_mentions(shared), before, "'out of memory' in the server log")
    assert "TROUBLE-OK" in shared.page("/trouble").text


# ---------------------------------------------------------------- body limits


def chunked_post(server: Server, path: str, chunks: list[bytes]) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    started = time.monotonic()
    try:
        conn.request(
            "POST", path, body=iter(chunks), encode_chunked=True,
            headers={"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"},
        )  # fmt: skip
        resp = conn.getresponse()
        body = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return Response(resp.status, headers, body, time.monotonic() - started)
    finally:
        conn.close()


def test_request_body_over_the_limit_gets_413_without_reaching_the_function(shared: Server) -> None:
    fsite = fsite_of(shared)
    octet = {"Content-Type": "application/octet-stream"}
    big = shared.request("POST", "/api/marker?id=big", headers=octet, body=b"x" * 2000)
    assert_api_error(big, 413, "FUNCTION_PAYLOAD_TOO_LARGE", shared)
    chunked = chunked_post(shared, "/api/marker?id=chunked", [b"y" * 600] * 4)
    assert_api_error(chunked, 413, "FUNCTION_PAYLOAD_TOO_LARGE", shared)
    # a body under the limit (1kb) reaches it, and it leaves its marker
    small = shared.request("POST", "/api/marker?id=small", headers=octet, body=b"z" * 900)
    assert small.status == 200, f"{small.describe()}\n{shared.output()}"
    assert small.json() == {"received": 900}
    assert fsite.marker_text("marker-small") == "900"
    assert not fsite.marker("marker-big").exists(), "the function ran for a body over the limit"
    assert not fsite.marker("marker-chunked").exists(), "the function ran for a chunked body over the limit"


def test_response_over_the_limit_gets_500(shared: Server) -> None:
    ok = shared.get("/api/fail?mode=big&n=60000")
    assert ok.status == 200 and len(ok.body) == 60000, ok.describe()
    assert_api_error(shared.get("/api/fail?mode=big&n=70000"), 500, "FUNCTION_RESPONSE_PAYLOAD_TOO_LARGE", shared)
    assert_page_error(shared.get("/trouble?mode=big"), 500, "FUNCTION_RESPONSE_PAYLOAD_TOO_LARGE", shared)
    assert api_ok(shared, "/api/fail?mode=ok")["ok"] is True


# ------------------------------------------------------------------ timeouts


def assert_on_time(resp: Response) -> None:
    assert MAX_DURATION_S - 0.1 <= resp.elapsed <= MAX_DURATION_S + LATE_S, (
        f"answered after {resp.elapsed:.2f}s; maxDuration is {MAX_DURATION_S}s"
    )


def test_spinning_api_function_is_stopped_at_its_max_duration(shared: Server) -> None:
    fsite = fsite_of(shared)
    fsite.marker("spin").unlink(missing_ok=True)
    api_ok(shared, "/api/timeout/spin")  # a warm worker: the deadline is the function's alone
    resp = shared.get("/api/timeout/spin?spin=1")
    assert_api_error(resp, 504, TIMEOUT, shared)
    assert_on_time(resp)
    pid = wait_pid_file(fsite, "spin")
    wait_for(lambda: pid_gone(pid), 3, what=f"the spinning worker {pid} to be stopped")
    again = api_ok(shared, "/api/timeout/spin")
    assert again["pid"] != pid


def test_hanging_api_function_is_stopped_at_its_max_duration(shared: Server) -> None:
    fsite = fsite_of(shared)
    fsite.marker("hang").unlink(missing_ok=True)
    api_ok(shared, "/api/timeout/hang")
    resp = shared.get("/api/timeout/hang?hang=1")
    assert_api_error(resp, 504, TIMEOUT, shared)
    assert_on_time(resp)
    pid = wait_pid_file(fsite, "hang")
    wait_for(lambda: pid_gone(pid), 3, what=f"the hanging worker {pid} to be stopped")
    assert api_ok(shared, "/api/timeout/hang")["hang"] is False


def test_spinning_page_is_stopped_at_its_max_duration(shared: Server) -> None:
    fsite = fsite_of(shared)
    fsite.marker("trouble-spin").unlink(missing_ok=True)
    shared.page("/trouble")
    resp = shared.get("/trouble?mode=spin")
    assert_page_error(resp, 504, TIMEOUT, shared)
    assert_on_time(resp)
    pid = wait_pid_file(fsite, "trouble-spin")
    wait_for(lambda: pid_gone(pid), 3, what=f"the spinning worker {pid} to be stopped")
    assert "TROUBLE-OK" in shared.page("/trouble").text


def test_server_answers_other_requests_while_a_function_spins(shared: Server) -> None:
    fsite = fsite_of(shared)
    # two warm workers in the stuck function's bundle, and the pages below rendered once
    concurrently([lambda: api_ok(shared, "/api/timeout/spin?sleep=0.5")] * 2)
    for path in ["/", "/ssr", "/api/echo", "/api/timeout/hang"]:
        shared.page(path)
    fsite.marker("spin").unlink(missing_ok=True)
    stuck = Call(shared, "/api/timeout/spin?spin=1")
    wait_pid_file(fsite, "spin")
    others = {
        "/": "a cached page",
        "/robots.txt": "a public file",
        "/ssr": "an SSR page of another bundle",
        "/api/echo": "an API function of another bundle",
        "/api/timeout/hang": "another function of the same bundle",
    }
    for path, what in others.items():
        resp = shared.get(path, timeout=10)
        assert resp.status == 200, f"{what} {path} while a function spins: {resp.describe()}\n{shared.output()}"
        assert resp.elapsed < 1.0, f"{what} {path} waited {resp.elapsed:.2f}s on the stuck function"
    assert stuck.running, "the stuck function finished before the other requests were checked"
    assert_api_error(stuck.response(), 504, TIMEOUT, shared)


# ------------------------------------------------------------ pools, queueing


def starts(fsite: Any, prefix: str) -> list[str]:
    return [t for t in fsite.render_tags() if t.startswith(prefix)]


def test_functions_with_one_configuration_share_its_workers(shared: Server) -> None:
    solo = {api_ok(shared, "/api/solo/pid")["pid"] for _ in range(3)}
    solo |= {api_ok(shared, "/api/solo/queue")["pid"]}
    assert len(solo) == 1, f"a maxConcurrency 1 bundle used several processes: {solo}"
    other = api_ok(shared, "/api/fail?mode=ok")["pid"]
    assert other not in solo, "functions with different configurations share a worker"


def test_a_bundle_runs_at_most_its_max_concurrency_at_once(shared: Server) -> None:
    fsite = fsite_of(shared)
    before = len(starts(fsite, "pool:start:"))
    fsite.control("pool", hold=True)
    try:
        calls = [Call(shared, "/api/pool/hold") for _ in range(6)]
        wait_for(lambda: len(starts(fsite, "pool:start:")) - before >= 4, 20, what="4 invocations running")
        time.sleep(0.5)  # an observation window: no fifth invocation may start while 4 are held
        running = starts(fsite, "pool:start:")[before:]
        assert len(running) == 4, f"default bundle (maxConcurrency 4) ran {len(running)} at once"
        assert len(set(running)) == 4, f"4 concurrent invocations but not 4 processes: {running}"
        assert all(c.running for c in calls), "a held invocation answered"
    finally:
        fsite.control("pool", hold=False)
    responses = [c.response() for c in calls]
    assert [r.status for r in responses] == [200] * 6, [r.describe() for r in responses if r.status != 200]
    assert len({r.json()["pid"] for r in responses}) <= 4


def test_full_queue_gets_503_throttled(shared: Server) -> None:
    """maxConcurrency 1: one invocation runs, 8 per worker wait, the rest are refused at once."""
    fsite = fsite_of(shared)
    api_ok(shared, "/api/solo/queue")  # its one worker is up
    before = len(starts(fsite, "queue:"))
    fsite.control("queue", hold=True)
    try:
        calls = [Call(shared, "/api/solo/queue") for _ in range(30)]

        def refused() -> int:
            return sum(1 for c in calls if not c.running and isinstance(c.result, Response) and c.result.status == 503)

        wait_for(lambda: refused() >= 21, 15, what="21 of 30 requests refused")
        wait_for(lambda: len(starts(fsite, "queue:")) > before, 10, what="the first invocation to start")
        time.sleep(0.3)  # an observation window: nothing else may run or be refused meanwhile
        assert starts(fsite, "queue:")[before:] == [starts(fsite, "queue:")[before]], "more than one invocation ran"
        assert refused() == 21, f"{refused()} refused while the queue was full (expected 30 - 1 - 8 = 21)"
        assert sum(1 for c in calls if c.running) == 9, "the running and queued requests should still wait"
    finally:
        fsite.control("queue", hold=False)
    responses = [c.response() for c in calls]
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 9 + [503] * 21, statuses
    for resp in responses:
        if resp.status == 503:
            assert_api_error(resp, 503, "FUNCTION_THROTTLED", shared)
    log = starts(fsite, "queue:")[before:]
    kinds = [t.split(":")[1] for t in log]
    assert kinds == ["start", "end"] * 9, f"queued invocations overlapped: {log}"
    assert api_ok(shared, "/api/solo/pid")["pid"]
