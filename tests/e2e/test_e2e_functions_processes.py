"""No worker process outlives its server, whether it stops or dies (issue 3, item 10).

While the server runs, every process below it is recorded from /proc (pid, start time).
After the server is gone, none of them may exist any more, not even as a zombie, and
no process may carry the test's environment (workers inherit $RENDER_LOG, unique per test).

Only the server's own pid is signalled: the suite's usual stop also kills its whole
process group, which would hide orphans.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from e2e_support import Server
from functions_support import (
    Call,
    FnSite,
    api_ok,
    descendants,
    describe,
    processes_with_env,
    site,  # noqa: F401  (fixture)
    survivors,
    wait_pid_file,
)

GONE_WITHIN_S = 5.0
EXIT_WITHIN_S = 15.0


def busy_server(
    serve: Callable[..., Server], fsite: FnSite, stuck: bool = True
) -> tuple[Server, dict[int, int], Call | None]:
    """A server with workers in several bundles, one of them spinning in `while True: pass`."""
    server = serve()
    api_ok(server, "/api/echo")
    api_ok(server, "/api/mem256?mb=1")
    api_ok(server, "/api/solo/pid")
    server.page("/ssr")
    call = Call(server, "/api/timeout/spin?spin=1") if stuck else None
    spinning = wait_pid_file(fsite, "spin") if stuck else None
    assert server.proc is not None
    tree = descendants(server.proc.pid)
    assert spinning is None or spinning in tree, f"the spinning worker {spinning} is not below the server: {sorted(tree)}"
    assert len(tree) >= 5, f"expected a forkserver and several workers below the server, found {sorted(tree)}"
    return server, tree, call


def assert_nothing_left(tree: dict[int, int], fsite: FnSite, how: str) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while True:
        left = survivors(tree) | processes_with_env(str(fsite.render_log))
        if not left:
            return
        if time.monotonic() > deadline:
            listing = "\n".join(describe(pid) for pid in sorted(left))
            raise AssertionError(f"{GONE_WITHIN_S}s after the server {how}, its processes remain:\n{listing}")
        time.sleep(0.1)


def test_sigterm_leaves_no_worker_behind(serve: Callable[..., Server], site: FnSite) -> None:
    server, tree, stuck = busy_server(serve, site)
    assert server.proc is not None
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(EXIT_WITHIN_S)
    elapsed = time.monotonic() - started
    assert_nothing_left(tree, site, "stopped on SIGTERM")
    assert stuck is not None
    stuck.thread.join(10)
    assert elapsed < EXIT_WITHIN_S


@pytest.mark.parametrize("stuck", [False, True], ids=["idle-workers", "a-worker-stuck-in-a-loop"])
def test_kill_9_of_the_server_leaves_no_worker_behind(
    serve: Callable[..., Server], site: FnSite, stuck: bool
) -> None:
    server, tree, call = busy_server(serve, site, stuck)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(EXIT_WITHIN_S)
    assert_nothing_left(tree, site, "was killed with SIGKILL")
    if call is not None:
        call.thread.join(10)
