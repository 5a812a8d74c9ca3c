"""The load core: what to request when (`arrivals`), and sending it to a server.

Open loop by default: arrivals are on a schedule and do not wait for answers, and each
latency runs from the intended send time, so a stalled server cannot hide it (the
coordinated-omission correction of wrk2).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import aiohttp
import orjson
import yarl

from isr.bench.client import Client
from isr.bench.popularity import Zipf
from isr.bench.report import Outcome, Report, summarize
from isr.constants import CACHE_STATE, GENERATION, STALE
from isr.errors import IsrError

BATCH = 1024
clock = time.perf_counter  # uvloop's loop.time() only has whole milliseconds  # paths drawn from the popularity curve at a time


@dataclass(frozen=True)
class Workload:
    """What to request and how hard: generated arrivals over `paths`, or a replayed trace."""

    paths: tuple[str, ...] = ("/",)  # by popularity rank, most popular first
    zipf: float = 1.0  # 0: uniform
    rate: float | None = 100.0  # arrivals per second; None: closed loop (--connections)
    duration_s: float = 10.0  # measured seconds
    warmup_s: float = 0.0  # seconds before them, not counted
    trace: tuple[tuple[float, str], ...] = ()  # (seconds since the first request, path)
    speed: float = 1.0  # trace replay speed factor
    seed: int = 1


def arrivals(options: Workload) -> Iterator[tuple[float, str]]:
    """(t, path) in time order; t counts from the start of the measured part, so warm-up
    arrivals have t < 0 (from -warmup_s). A trace is replayed at its own pace times `speed`,
    until it ends or `duration_s` is reached. A closed-loop workload (rate None) has no
    schedule: every t is 0."""
    if options.trace:
        for t, path in options.trace:
            at = t / options.speed - options.warmup_s
            if at >= options.duration_s:
                return
            yield at, path
        return
    paths = requested_paths(options)
    if options.rate is None:
        yield from ((0.0, path) for path in paths)
        return
    total = int((options.warmup_s + options.duration_s) * options.rate)
    for n, path in zip(range(total), paths, strict=False):
        yield n / options.rate - options.warmup_s, path


def requested_paths(options: Workload) -> Iterator[str]:
    """An endless stream of paths drawn from the Zipf curve over the workload's paths."""
    sampler = Zipf(options.paths, options.zipf, options.seed)
    return itertools.chain.from_iterable(sampler.sample(BATCH) for _ in itertools.count())


class LoadError(IsrError):
    """The server cannot be loaded: it does not answer, or the load cannot start."""


@dataclass(frozen=True)
class Target:
    """Where the load goes, and the changes made meanwhile."""

    url: str
    connections: int = 64  # the pool (open loop) or the number of clients (closed loop)
    timeout_s: float = 10.0  # per request
    token: str = ""
    revalidate_rate: float = 0.0  # on-demand revalidations of requested paths per second
    tag_rate: float = 0.0
    tags: tuple[str, ...] = ()
    compressed: bool = True  # send Accept-Encoding: gzip, deflate, br as browsers do; False: none


@dataclass
class Progress:
    """What the live display shows; the load core updates it, a ticker draws it."""

    elapsed_s: float = 0.0
    total_s: float = 0.0
    sent: int = 0
    done: int = 0
    errors: int = 0
    states: Counter[str] = field(default_factory=Counter)


class _Run:
    """One load run's state: the session, the outcomes, what each path last looked like."""

    def __init__(self, workload: Workload, target: Target, session: aiohttp.ClientSession, zero: float) -> None:
        self.workload, self.target, self.session, self.zero = workload, target, session, zero
        self.loop = asyncio.get_running_loop()
        self.base = yarl.URL(target.url)
        self.clients: list[Client] = []
        self.outcomes: list[Outcome] = []
        self.generations: dict[str, str] = {}
        self.pending: dict[str, tuple[float, str | None]] = {}  # path -> (revalidated at, generation before)
        self.to_fresh_ms: list[float] = []
        self.revalidations = 0
        self.failed_revalidations: Counter[str] = Counter()
        self.late = 0  # sends dispatched over LATE_S behind their intended time
        self.finished = zero  # when the last answer came back
        self.progress = Progress(total_s=workload.warmup_s + workload.duration_s)

    def client(self) -> Client:
        """A connection of its own for one load client (opened at its first request)."""
        client = Client(self.base, self.target.timeout_s, self.target.compressed)
        self.clients.append(client)
        return client

    async def request(self, client: Client, path: str, due: float) -> None:
        """GET path; latency from `due` (clock time), the intended send time."""
        state = error = ""
        staleness = 0.0
        regenerated = False
        try:
            status, headers, body = await client.get(path)
            state = headers.get(CACHE_STATE, "")
            if status >= 400:
                error = error_key(status, body)
            else:
                if state == STALE:
                    staleness = staleness_s(headers.get("age"), headers.get("cache-control", ""))
                regenerated = self.saw(path, headers.get(GENERATION), due)
        except OSError as exc:  # ConnectionError, TimeoutError
            error = f"connection: {type(exc).__name__}"
        end = clock()
        self.outcomes.append(Outcome(due - self.zero, (end - due) * 1000, state, error, staleness, regenerated, path))
        progress = self.progress
        progress.done += 1
        if error:
            progress.errors += 1
        else:
            progress.states[state] += 1

    def saw(self, path: str, generation: str | None, due: float) -> bool:
        """Note a response's generation; True when it changed (a regeneration was served)."""
        if generation is None:
            return False
        before = self.generations.get(path)
        if before == generation:
            return False
        self.generations[path] = generation
        pending = self.pending.get(path)
        if pending is not None and due >= pending[0] and generation != pending[1]:
            del self.pending[path]
            self.to_fresh_ms.append((clock() - pending[0]) * 1000)
        return before is not None

    async def open_loop(self) -> None:
        """Each connection takes the next arrival when it is free and sends it when due (as
        wrk2 does): no task per request, and a send held up by busy connections still has
        its latency counted from when it was due."""
        schedule = arrivals(self.workload)

        async def client() -> None:
            connection = self.client()
            for t, path in schedule:
                due = self.zero + t
                ahead = due - clock()
                if ahead > SLEEP_MIN_S:
                    await asyncio.sleep(ahead)
                elif ahead < -LATE_S:
                    self.late += 1
                self.progress.sent += 1
                await self.request(connection, path, due)

        await asyncio.gather(*(client() for _ in range(self.target.connections)))

    async def closed_loop(self) -> None:
        paths = requested_paths(self.workload)
        end = self.zero + self.workload.duration_s

        async def client() -> None:
            connection = self.client()
            while (now := clock()) < end:
                self.progress.sent += 1
                await self.request(connection, next(paths), now)

        await asyncio.gather(*(client() for _ in range(self.target.connections)))

    async def changes(self, rate: float, tags: bool) -> None:
        """On-demand revalidations (paths) or tag marks at `rate` per second, on schedule."""
        rng = random.Random(self.workload.seed + (2 if tags else 1))
        for n in itertools.count(1):
            due = self.zero - self.workload.warmup_s + n / rate
            if due - self.zero >= self.workload.duration_s:
                return
            await asyncio.sleep(max(due - clock(), 0))
            if due < self.zero:
                continue
            if tags:
                await self.revalidate([], [rng.choice(self.target.tags)])
            elif self.generations:
                path = rng.choice(sorted(self.generations))
                self.pending[path] = (clock(), self.generations.get(path))
                if not await self.revalidate([path], []):
                    self.pending.pop(path, None)

    async def revalidate(self, paths: list[str], tags: list[str]) -> bool:
        self.revalidations += 1
        headers = {"Authorization": f"Bearer {self.target.token}"}
        try:
            async with self.session.post(self.base / "_isr/revalidate", json={"paths": paths, "tags": tags}, headers=headers) as response:
                await response.read()
                if response.status in (200, 207):
                    return True
                self.failed_revalidations[str(response.status)] += 1
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.failed_revalidations[type(exc).__name__] += 1
        return False


SLEEP_MIN_S = 0.001  # sends due sooner than this go out now (asyncio.sleep is no finer)
LATE_S = 0.010  # a send this far behind its intended time counts as late
LATE_SHARE = 0.10  # above this share of late sends, the generator is the bottleneck
CPU_SATURATED = 0.90  # share of one core the generator may use before it warns


async def run(workload: Workload, target: Target, on_progress: Callable[[Progress], None] | None = None) -> Report:
    """Load the target with the workload and report; LoadError if it does not answer."""
    # aiohttp for the probe and the revalidations; the load's GETs go through isr.bench.client
    connector = aiohttp.TCPConnector(limit=4, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=target.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as session:
        await probe(session, target.url)
        loop = asyncio.get_running_loop()
        zero = clock() + workload.warmup_s
        state = _Run(workload, target, session, zero)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        ticker = loop.create_task(_tick(state, on_progress)) if on_progress else None
        changes = [loop.create_task(state.changes(rate, tags)) for rate, tags in ((target.revalidate_rate, False), (target.tag_rate, True)) if rate > 0]
        try:
            if workload.rate is None and not workload.trace:
                await state.closed_loop()
            else:
                await state.open_loop()
        finally:
            state.finished = clock()
            for client in state.clients:
                client.close()
        for task in changes:
            await task
        if ticker is not None:
            ticker.cancel()
        cpu = (time.process_time() - cpu_before) / max(time.perf_counter() - wall_before, 1e-9)
    return _report(state, cpu)


def _report(state: _Run, cpu: float) -> Report:
    workload, target = state.workload, state.target
    measured = [o for o in state.outcomes if o.t >= 0]
    duration = workload.duration_s
    if workload.trace:
        duration = min(duration, workload.trace[-1][0] / workload.speed - workload.warmup_s) or duration
    rate = workload.rate if not workload.trace else None
    report = summarize(measured, duration, rate, state.to_fresh_ms, state.revalidations, state.finished - state.zero)
    report.workload = {
        "url": target.url, "mode": "closed" if rate is None and not workload.trace else "open",
        "connections": target.connections, "paths": len(set(workload.paths)) if not workload.trace else len({p for _, p in workload.trace}),
        "zipf": workload.zipf, "trace": bool(workload.trace), "speed": workload.speed, "warmup_s": workload.warmup_s,
        "generator_cpu": round(cpu, 3),
    }  # fmt: skip
    report.warnings = generator_warnings(state.late, state.progress.sent, cpu, report, target.connections)
    if state.failed_revalidations:
        failed = ", ".join(f"{n} x {why}" for why, n in state.failed_revalidations.most_common())
        report.warnings.append(f"{state.failed_revalidations.total()} of {state.revalidations} revalidations failed ({failed})")
    return report


def generator_warnings(late: int, sent: int, cpu: float, report: Report, connections: int) -> list[str]:
    """Why the figures may describe the load generator rather than the server, or the server
    did not keep up with the rate asked."""
    warnings = []
    late_share = late / sent if sent else 0.0
    if late_share > LATE_SHARE and cpu > CPU_SATURATED:
        warnings.append(
            f"the load generator is the bottleneck: {late_share:.0%} of sends left over {LATE_S * 1000:.0f} ms behind schedule "
            f"and it used {cpu:.0%} of a core (use several processes, or a lower --rate)"
        )
    elif late_share > LATE_SHARE:
        warnings.append(
            f"{late_share:.0%} of sends left over {LATE_S * 1000:.0f} ms behind schedule, all {connections} connections waiting "
            "for answers: the server did not keep up (latency counts from the intended times; more --connections "
            "send on time what a server can take in parallel)"
        )
    elif cpu > CPU_SATURATED:
        warnings.append(f"the load generator used {cpu:.0%} of a core: its CPU may be the bottleneck (use fewer connections or a lower --rate)")
    if report.target_rate and report.achieved_rate < (1 - LATE_SHARE) * report.target_rate:
        warnings.append(f"achieved {report.achieved_rate:,.0f} req/s of the {report.target_rate:,.0f} asked")
    return warnings


PROBE = "/_isr/bench-probe"  # no page: the probe renders nothing and is not counted by the server


async def probe(session: aiohttp.ClientSession, url: str) -> None:
    """One request first, so an unreachable URL is one error, not a run of errors. It asks
    for no page, so the run's first request of each path finds the cache as it was (a
    MISS is counted, not hidden in the probe) and the server's request counters move by
    exactly what the report counts. Any answer will do (isr's is a 404)."""
    try:
        async with session.get(yarl.URL(url).join(yarl.URL(PROBE)), allow_redirects=False) as response:
            await response.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise LoadError(f"{url} does not answer: {exc or type(exc).__name__}") from None


async def _tick(state: _Run, on_progress: Callable[[Progress], None]) -> None:
    start = state.zero - state.workload.warmup_s
    while True:
        state.progress.elapsed_s = max(clock() - start, 0.0)
        on_progress(state.progress)
        await asyncio.sleep(TICK_S)


TICK_S = 0.25


def error_key(status: int, body: bytes) -> str:
    """'503 FUNCTION_THROTTLED' from isr's JSON error body, else the status alone."""
    try:
        code = orjson.loads(body)["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return str(status)
    return f"{status} {code}" if isinstance(code, str) else str(status)


_max_ages: dict[str, float] = {}  # memo: Cache-Control -> its s-maxage


def staleness_s(age: str | None, cache_control: str) -> float:
    """How long past its freshness a response is: Age minus s-maxage (never below 0)."""
    s_maxage = _max_ages.get(cache_control)
    if s_maxage is None:
        match = S_MAXAGE.search(cache_control)
        s_maxage = _max_ages[cache_control] = float(match.group(1)) if match else 0.0
    try:
        return max(float(age or 0) - s_maxage, 0.0)
    except ValueError:
        return 0.0


S_MAXAGE = re.compile(r"s-maxage=(\d+)")
