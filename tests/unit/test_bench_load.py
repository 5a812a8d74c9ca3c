"""The load core: open-loop arrivals on a schedule (intended send times), latency measured from
the intended time (a stalled server cannot hide it), and what it reads off each answer. The
server here is a small aiohttp app in the test's own loop, answering as isr does."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from isr.bench import load
from isr.bench.load import PROBE, LoadError, Target, Workload, arrivals, error_key, staleness_s


def test_open_loop_arrivals_are_evenly_spaced_intended_send_times() -> None:
    schedule = list(arrivals(Workload(paths=("/a",), rate=20.0, duration_s=2.0)))
    assert len(schedule) == 40
    assert [t for t, _ in schedule] == [pytest.approx(n / 20) for n in range(40)]
    assert {path for _, path in schedule} == {"/a"}


def test_warm_up_arrivals_come_first_at_negative_times() -> None:
    schedule = list(arrivals(Workload(paths=("/a",), rate=10.0, duration_s=1.0, warmup_s=0.5)))
    times = [t for t, _ in schedule]
    assert len(times) == 15 and times[0] == pytest.approx(-0.5) and times[5] == pytest.approx(0.0)
    assert sum(1 for t in times if t < 0) == 5


def test_generated_paths_follow_the_zipf_curve_and_the_seed() -> None:
    workload = Workload(paths=("/1", "/2", "/3", "/4"), zipf=1.0, rate=1000.0, duration_s=20.0, seed=3)
    counts = Counter(path for _, path in arrivals(workload))
    assert counts["/1"] > counts["/2"] > counts["/4"]
    assert counts["/1"] / 20_000 == pytest.approx(1 / (1 + 1 / 2 + 1 / 3 + 1 / 4), abs=0.01)
    assert list(arrivals(workload))[:50] == list(arrivals(workload))[:50]


def test_a_trace_is_replayed_at_its_pace_times_speed_until_the_duration() -> None:
    trace = ((0.0, "/a"), (1.0, "/b"), (2.0, "/c"), (10.0, "/d"))
    assert list(arrivals(Workload(trace=trace, duration_s=100.0))) == list(trace)
    assert list(arrivals(Workload(trace=trace, speed=2.0, duration_s=100.0))) == [
        (0.0, "/a"),
        (0.5, "/b"),
        (1.0, "/c"),
        (5.0, "/d"),
    ]
    assert [p for _, p in arrivals(Workload(trace=trace, duration_s=2.0))] == ["/a", "/b"]  # t < duration
    assert list(arrivals(Workload(trace=trace, warmup_s=1.0, duration_s=100.0)))[0] == (-1.0, "/a")


def test_a_closed_loop_has_no_schedule() -> None:
    first = list(itertools.islice(arrivals(Workload(paths=("/a", "/b"), rate=None)), 100))
    assert len(first) == 100 and {t for t, _ in first} == {0.0}


def test_staleness_is_age_minus_s_maxage() -> None:
    assert staleness_s("5", "s-maxage=1, stale-while-revalidate=31535999") == 4.0
    assert staleness_s("1", "s-maxage=1, stale-while-revalidate") == 0.0
    assert staleness_s("0", "s-maxage=60") == 0.0  # never below 0
    assert staleness_s("7", "public, max-age=0") == 7.0  # no s-maxage: all of its age
    assert staleness_s(None, "s-maxage=1") == 0.0 and staleness_s("soon", "s-maxage=1") == 0.0


def test_error_keys() -> None:
    assert error_key(503, b'{"error": {"code": "FUNCTION_THROTTLED", "message": "busy"}}') == "503 FUNCTION_THROTTLED"
    assert error_key(404, b"<html>not found</html>") == "404"
    assert error_key(500, b'{"error": "boom"}') == "500"
    assert error_key(500, b'{"error": {"code": 7}}') == "500"


# --- against a server ---------------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Start = Callable[[Handler], Awaitable[str]]


@pytest.fixture
async def server() -> AsyncIterator[Start]:
    """start(handler) serves every path with `handler` on a free port and gives its URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_latency_runs_from_the_intended_send_time_when_the_server_stalls(server: Start) -> None:
    """The first answer takes 0.5 s; with one connection the sends due meanwhile wait for it. A
    closed-loop tool would time them from when they left (~0 ms); the open loop times them from
    when they were due, so they show the stall (wrk2's coordinated-omission correction)."""
    served: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        if request.path == PROBE:
            return web.Response(status=404)
        served.append(request.path)
        if len(served) == 1:
            await asyncio.sleep(0.5)
        return web.Response(text="ok", headers={"x-isr-cache": "HIT"})

    url = await server(handler)
    report = await load.run(Workload(paths=("/a",), rate=20.0, duration_s=1.0), Target(url, connections=1))
    assert report.requests == 20 and report.states["HIT"] == 20 and len(served) == 20
    assert report.series[0]["HIT"] == 20
    # The first takes the stall itself (500 ms); the nine due during it are sent when it ends, so
    # they count 450, 400, ... 50 ms; the ten due after it are quick. Sorted: 10 quick, 50 ... 500.
    latency = report.latency_ms["all"]
    assert latency["max"] >= 500, latency
    assert 350 <= latency["p90"] <= 450, latency  # the 18th of 20: the one due 100 ms in (~400 ms)
    assert latency["p50"] < 50, latency  # the 10th: one sent on time
    assert report.achieved_rate == pytest.approx(20.0) and report.target_rate == 20.0
    # 9 of 20 sends left late, with the one connection waiting: the server's fault, not the generator's
    assert any("behind schedule, all 1 connections waiting for answers" in w for w in report.warnings), report.warnings


async def test_open_loop_sends_on_schedule_not_as_fast_as_it_can(server: Start) -> None:
    times: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        if request.path != PROBE:
            times.append(asyncio.get_running_loop().time())
        return web.Response(text="ok", headers={"x-isr-cache": "HIT"})

    url = await server(handler)
    report = await load.run(Workload(paths=("/a",), rate=10.0, duration_s=1.0), Target(url, connections=4))
    assert report.requests == len(times) == 10
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    # 0.1 s apart (as fast as it can, it would send all ten within milliseconds)
    assert 0.8 <= times[-1] - times[0] <= 1.1 and 0.08 <= gaps[len(gaps) // 2] <= 0.12, gaps
    assert report.latency_ms["all"]["p99"] < 100
    assert not any("bottleneck" in w for w in report.warnings), report.warnings


async def test_what_it_reads_off_the_answers(server: Start) -> None:
    """States from x-isr-cache, staleness of STALE answers, a changed x-isr-generation is a
    regeneration, error statuses by code; the probe is not counted."""
    count = itertools.count()
    probes = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal probes
        if request.path == PROBE:
            probes += 1
            return web.Response(status=404)
        if request.path == "/broken":
            return web.json_response({"error": {"code": "FUNCTION_ERROR"}}, status=500)
        n = next(count)
        state = "MISS" if n == 0 else "STALE" if n % 4 == 0 else "HIT"
        headers = {"x-isr-cache": state, "x-isr-generation": f"g{n // 4}", "Age": "3", "Cache-Control": "s-maxage=1"}
        return web.Response(text="ok", headers=headers)

    url = await server(handler)
    workload = Workload(trace=tuple((n * 0.02, "/broken" if n % 10 == 9 else "/p") for n in range(40)), duration_s=5.0)
    report = await load.run(workload, Target(url, connections=1))
    assert probes == 1
    assert report.requests == 40 and report.errors == 4 and report.errors_by == {"500 FUNCTION_ERROR": 4}
    assert report.states == {"HIT": 27, "STALE": 8, "MISS": 1}
    assert report.staleness_s["max"] == 2.0 and report.staleness_s["p50"] == 2.0
    assert report.regenerations == 8  # g0 -> g1 ... g8: each a change of generation after the first seen
    assert report.top_paths[0]["path"] == "/p" and report.top_paths[1] == {
        "path": "/broken", "requests": 4, "HIT": 0, "STALE": 0, "MISS": 0, "errors": 4,
    }  # fmt: skip
    assert report.target_rate is None and report.workload["trace"] is True


async def test_a_url_that_does_not_answer_is_one_error() -> None:
    with pytest.raises(LoadError, match=r"^http://127.0.0.1:1 does not answer: "):
        await load.run(Workload(paths=("/a",), rate=10.0, duration_s=1.0), Target("http://127.0.0.1:1"))


async def test_accept_encoding_is_sent_unless_compressed_is_off(server: Start) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        if request.path != PROBE:
            seen.append(request.headers.get("Accept-Encoding"))
        return web.Response(text="ok")

    url = await server(handler)
    workload = Workload(paths=("/a",), rate=50.0, duration_s=0.1)
    await load.run(workload, Target(url, connections=1))
    await load.run(workload, Target(url, connections=1, compressed=False))
    assert seen[0] is not None and "gzip" in seen[0]
    assert seen[-1] is None
