"""Log records, their filters, the on-disk store and the stats."""

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from isr.logs.hub import LogHub
from isr.logs.record import MAX_LINES, Filter, LogRecord
from isr.logs.stats import Stats
from isr.logs.store import ERRORS_KEPT, RECENT_SECONDS, LogStore


def rec(n: int = 0, status: int = 200, function: str = "pages/a.py", error: str | None = None, at: float | None = None) -> LogRecord:
    return LogRecord(function, f"/p{n}", "api", status, 1.0, error=error, time=at or time.time())


def test_errors_are_5xx_and_failed_regenerations() -> None:
    assert rec(status=500).is_error and rec(status=200, error="FUNCTION_INVOCATION_TIMEOUT").is_error
    assert not rec(status=404).is_error


def test_printed_lines_are_bounded() -> None:
    record = LogRecord("f", "/", "api", 200, 1, lines=["x" * 10_000] * 1000)
    assert len(record.lines) == MAX_LINES and len(record.lines[0]) == 4096


def test_filter_by_function_errors_and_age() -> None:
    old = rec(function="pages/b.py", status=500, at=time.time() - 100)
    new = rec(function="pages/a.py")
    assert Filter(function="pages/a.py")(new) and not Filter(function="pages/a.py")(old)
    assert Filter(errors=True)(old) and not Filter(errors=True)(new)
    assert not Filter(since=time.time() - 10)(old)


def test_store_keeps_the_newest_2000_errors_across_reopen(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append([rec(n, status=500) for n in range(ERRORS_KEPT + 50)])
    store.close()
    again = LogStore(tmp_path)
    errors = again.read(Filter(errors=True))
    assert len(errors) == ERRORS_KEPT
    assert errors[0].path == "/p50" and errors[-1].path == f"/p{ERRORS_KEPT + 49}"


def test_store_keeps_the_last_hour_and_old_errors(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    long_ago = time.time() - RECENT_SECONDS - 5
    store.append([rec(1, at=long_ago), rec(2, status=500, at=long_ago), rec(3)])
    assert [r.path for r in store.read(Filter())] == ["/p2", "/p3"]


async def test_hub_streams_and_flushes(tmp_path: Path) -> None:
    hub = LogHub(LogStore(tmp_path), Stats())
    queue = hub.subscribe()
    hub.publish(rec(7, status=502, error="NO_RESPONSE_FROM_FUNCTION"))
    assert (await queue.get()).path == "/p7"
    assert [r.path for r in await hub.read(Filter())] == ["/p7"]  # before the flush too
    await hub.flush()
    assert [r.path for r in LogStore(tmp_path).read(Filter(errors=True))] == ["/p7"]
    assert hub.stats.functions["pages/a.py"].errors == 1


def test_stats_percentiles_and_hit_ratio() -> None:
    stats = Stats()
    for ms in range(1, 101):
        stats.observe(LogRecord("f", "/", "regenerate", 200, float(ms)))
    assert stats.functions["f"].percentile(0.5) == pytest.approx(51)
    assert stats.functions["f"].percentile(0.99) == pytest.approx(100)
    assert stats.regenerations == 100
    stats.hit, stats.stale, stats.miss = 3, 1, 0
    assert stats.hit_ratio == 0.75


async def test_a_request_counted_right_after_the_hub_starts_reaches_the_series(tmp_path: Path) -> None:
    stats = Stats()
    hub = LogHub(LogStore(tmp_path), stats)
    running = asyncio.ensure_future(hub.run())
    await asyncio.sleep(0)  # the hub's first step: the server serves from here on
    stats.miss += 1  # the first request, a MISS
    deadline = time.monotonic() + 10
    while not stats.series and time.monotonic() < deadline:  # the first bucket is cut at the next second
        await asyncio.sleep(0.05)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert sum(bucket["MISS"] for bucket in stats.series) == 1
