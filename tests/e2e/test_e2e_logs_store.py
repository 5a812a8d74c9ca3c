"""The error store (issue 5): the last 2,000 error records per site, kept across restarts;
older ones are dropped, never the newest.

Most of the 2,000 are written into the store through `isr.logs.store.LogStore` (as the
server's flush does) before the server starts; the newest come from real failing calls.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Server, Site, concurrently
from logs_support import (
    BOOM,
    HELLO,
    assert_record_shape,
    cli_records,
    has_line,
    logs_site,
    seed,
    seed_record,
    wait_stored,
)

KEPT = 2000
SEEDED = 2040
LIVE = 12


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return logs_site(tmp_path)


def test_the_newest_2000_errors_survive_a_restart(site: Site, serve: Callable[..., Server]) -> None:
    base = time.time() - 600
    seed(site, [
        seed_record(f"/api/boom/seed-{i}", BOOM, 500, base + i * 0.01, "FUNCTION_INVOCATION_FAILED", [f"seed-{i}"])
        for i in range(SEEDED)
    ])  # fmt: skip
    server: Server = serve()

    def fail(i: int) -> int:
        return server.get(f"/api/boom/live-{i}").status

    assert server.get("/api/hello?tag=before-restart").status == 200
    statuses = concurrently([functools.partial(fail, i) for i in range(LIVE)])
    assert statuses == [500] * LIVE, statuses
    wait_stored(site, lambda r: r["path"].startswith("/api/boom/live-"), count=LIVE, errors=True,
                what="the failing calls' records in the error store")  # fmt: skip

    wait_stored(site, lambda r: has_line(r, "hello-line-1:before-restart"))
    server.restart()
    assert any(
        has_line(r, "hello-line-1:before-restart") for r in cli_records(site, "--function", HELLO)
    ), "a record of the last hour is gone after a restart"
    errors = cli_records(site, "--errors")
    assert len(errors) == KEPT, f"{len(errors)} error records kept, not {KEPT}"
    for record in errors:
        assert_record_shape(record)
    paths = [r["path"] for r in errors]
    live = {f"/api/boom/live-{i}" for i in range(LIVE)}
    assert set(paths[-LIVE:]) == live, (
        f"the newest records are not the last {LIVE}: {paths[-LIVE - 3 :]}"
    )
    dropped = SEEDED + LIVE - KEPT
    assert paths[:-LIVE] == [f"/api/boom/seed-{i}" for i in range(dropped, SEEDED)], (
        f"the kept seeded records are not the newest ones, oldest first: {paths[:3]} … {paths[-LIVE - 3 : -LIVE]}"
    )
    assert all(
        r["lines"] == [f"boom-before:{r['path'].rsplit('/', 1)[1]}"] for r in errors[-LIVE:]
    ), errors[-LIVE:]

    # the restarted server adds to the same store: still 2,000, the oldest one more goes
    assert server.get("/api/boom/after-restart").status == 500
    wait_stored(site, lambda r: r["path"] == "/api/boom/after-restart", errors=True)
    again = cli_records(site, "--errors", "--function", BOOM)
    assert len(again) == KEPT, len(again)
    assert again[-1]["path"] == "/api/boom/after-restart", again[-1]
    assert again[0]["path"] == f"/api/boom/seed-{dropped + 1}", again[0]
    assert again[-1]["instance"] != errors[-1]["instance"], "a restarted server is a new instance"
