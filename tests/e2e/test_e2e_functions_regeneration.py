"""A failing invocation never costs an ISR page its last good generation (issue 3, item 4).

`pages/regen/[name].py` has revalidate 1 and maxDuration 2; the control file
`regen-<name>.json` switches its get_static_props to raise, spin, sleep or allocate 2 GiB.
One server for the module; every test uses its own path.
"""

from __future__ import annotations

import time

import pytest

from e2e_support import Response, Server, wait_for, wait_until
from functions_support import (
    assert_page_error,
    fsite_of,
    pid_gone,
    shared,  # noqa: F401  (fixture)
    wait_pid_file,
)

MAX_DURATION_S = 2.0
LATE_S = 1.2
REVALIDATE_S = 1.0


def same_generation(resp: Response, first: Response, what: str, server: Server) -> None:
    where = f"{what}: {resp.describe()}\n{server.output()}"
    assert resp.status == 200, where
    assert resp.cache == "STALE", where
    assert resp.generation == first.generation, where
    assert resp.body == first.body, where


@pytest.mark.parametrize("mode", ["raise", "spin", "sleep", "oom"])
def test_failed_regeneration_keeps_serving_the_last_good_generation(shared: Server, mode: str) -> None:
    fsite = fsite_of(shared)
    path, control = f"/regen/{mode}", f"regen-{mode}"
    fsite.control(control, mode="ok")
    first = shared.page(path)
    generated = time.monotonic()
    assert first.cache == "MISS" and first.generation, first.describe()
    oom_before = shared.output().lower().count("out of memory")
    good_renders = fsite.render_tags().count(f"regen:{mode}:ok")

    fsite.control(control, mode=mode)
    wait_until(generated + REVALIDATE_S + 0.2)
    same_generation(shared.page(path), first, "the request that starts the regeneration", shared)
    tag = f"regen:{mode}:{mode}"
    wait_for(lambda: tag in fsite.render_tags(), 10, what=f"the failing regeneration ({tag}) to start")
    started = time.monotonic()

    # while it fails (or hangs), readers get the last good generation at once
    resp = shared.page(path)
    same_generation(resp, first, f"a read while the regeneration {mode}s", shared)
    assert resp.elapsed < 1.0, f"a read waited {resp.elapsed:.2f}s on the regeneration"

    if mode in ("spin", "sleep"):
        wait_until(started + MAX_DURATION_S + LATE_S)
    if mode == "spin":
        pid = wait_pid_file(fsite, control)
        wait_for(lambda: pid_gone(pid), 2, what=f"the spinning regeneration ({pid}) to be stopped")
    if mode == "oom":
        wait_for(lambda: shared.output().lower().count("out of memory") > oom_before, 5, what="'out of memory' in the log")
    wait_for(lambda: path in shared.output(), 5, what=f"the failed regeneration of {path} to be logged")

    # after the failure: still the last good generation, never an error
    fsite.control(control, mode="ok")
    same_generation(shared.page(path), first, f"a read after the regeneration {mode} failed", shared)

    # and the page recovers once its data function works again (after a back-off)
    def regenerated() -> Response | None:
        resp = shared.page(path)
        return resp if resp.generation != first.generation else None

    fresh = wait_for(regenerated, 15, interval=0.1, what="a new generation after the data function recovered")
    assert fresh.body != first.body, fresh.describe()
    assert fsite.render_tags().count(f"regen:{mode}:ok") > good_renders


def test_failed_first_render_answers_its_error_and_stores_nothing(shared: Server) -> None:
    fsite = fsite_of(shared)
    path, control = "/regen/first", "regen-first"
    fsite.control(control, mode="raise")
    assert_page_error(shared.get(path), 500, "FUNCTION_INVOCATION_FAILED", shared)
    assert_page_error(shared.get(path), 500, "FUNCTION_INVOCATION_FAILED", shared)
    assert fsite.render_tags().count("regen:first:raise") == 2, "the failed render was not retried per request"

    fsite.control(control, mode="spin")
    resp = shared.get(path)
    assert_page_error(resp, 504, "FUNCTION_INVOCATION_TIMEOUT", shared)
    assert MAX_DURATION_S - 0.1 <= resp.elapsed <= MAX_DURATION_S + LATE_S, f"answered after {resp.elapsed:.2f}s"

    fsite.control(control, mode="ok")
    ok = shared.page(path)
    assert ok.cache == "MISS", ok.describe()
    assert "REGEN" in ok.text
    again = shared.page(path)
    assert again.cache == "HIT" and again.generation == ok.generation, again.describe()
