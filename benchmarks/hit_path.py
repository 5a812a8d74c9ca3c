"""Hit-path benchmark: `isr serve` against a bare aiohttp handler serving the same bytes.

    .venv/bin/python benchmarks/hit_path.py [--duration 5] [--rounds 3] [--connections 64]

Starts `isr serve` on the example site (the repository) and on benchmarks/site, and one
baseline server (benchmarks/baseline_server.py) per scenario holding the very bytes isr
answered with. Each round loads, per scenario, the baseline and then isr the same way, with
`isr bench`'s load core (isr.bench.load, through harness.run_load: a closed loop of
--connections clients, as fast as the server answers), and the table gives the medians over
the rounds, with isr's figures as ratios to the baseline's. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from harness import (
    BENCH_DIR,
    DEFAULT_ISR,
    HTTP_TIMEOUT,
    LOAD_CONNECTIONS,
    POLL_INTERVAL,
    REPO,
    BenchError,
    Reply,
    Server,
    baseline_server,
    bench_main,
    free_ports,
    isr_server,
    log,
    poll_until,
    print_table,
    run_load,
    running,
)

from isr.bench.report import Report

EXAMPLE_SITE = REPO
STALE_SITE = BENCH_DIR / "site"
STALE_PATH = "/stale"
STALE_REVALIDATE = 1.0  # benchmarks/site/pages/stale.py's revalidate, if Cache-Control lacks it

HIT_TARGET = 0.8  # the target: a HIT reaches 0.8 of the baseline's requests/s
FOREVER = 31_536_000  # s-maxage of a page with `revalidate = False`
DATA_SCRIPT = re.compile(rb'<script[^>]*\bid="__ISR_DATA__"[^>]*>(.*?)</script>', re.S)


# --- cache states ------------------------------------------------------------------------


def freshness_left(reply: Reply) -> float:
    """Seconds this generation surely stays fresh, from its Cache-Control and Age."""
    match = re.search(r"s-maxage=(\d+)", reply.headers.get("cache-control", ""))
    if not match:
        return 0.0
    s_maxage = int(match.group(1))
    if s_maxage >= FOREVER:
        return float("inf")
    # Age is whole seconds, rounded down: the generation may be up to a second older.
    return s_maxage - int(reply.headers.get("age", "0")) - 1


def s_maxage(reply: Reply) -> float:
    match = re.search(r"s-maxage=(\d+)", reply.headers.get("cache-control", ""))
    return float(match.group(1)) if match else 0.0


# --- preparing isr's state before a run ---------------------------------------------------


def warm(server: Server, path: str, timeout: float) -> Reply:
    """Request `path` until it answers HIT (the first request renders it: MISS)."""
    first = server.get(path)
    if first.status != 200:
        raise server.fail(f"GET {path} answered {first.status}, expected 200")
    if first.cache not in ("MISS", "HIT"):
        raise server.fail(f"GET {path} answered x-isr-cache {first.cache!r}, expected MISS "
                          "(first request) or HIT")

    def probe() -> Reply | None:
        reply = server.get(path)
        return reply if reply.status == 200 and reply.cache == "HIT" else None

    reply = poll_until(f"{server.name} {path} to answer HIT", time.monotonic() + timeout, probe)
    if "content-encoding" in reply.headers:
        raise server.fail(f"GET {path} without Accept-Encoding came back with Content-Encoding: "
                          f"{reply.headers['content-encoding']} (the load sends no Accept-Encoding)")
    return reply


def ensure_fresh(server: Server, path: str, seconds: float, timeout: float) -> None:
    """Make sure `path` answers HIT and stays fresh for `seconds` (when its revalidate allows)."""
    deadline = time.monotonic() + seconds + timeout
    while True:
        reply = server.get(path)
        if reply.cache == "HIT":
            left = freshness_left(reply)
            if left >= seconds or s_maxage(reply) - 1 < seconds:
                return
            # Too close to its revalidate: let it go stale, and the next probe regenerates it.
            time.sleep(max(0.0, left + 1.5))
        else:
            time.sleep(POLL_INTERVAL)
        if time.monotonic() > deadline:
            raise server.fail(f"{path} did not answer a lasting HIT (last: {reply.cache}, "
                              f"Cache-Control {reply.headers.get('cache-control')!r}, "
                              f"Age {reply.headers.get('age')!r})")


def make_stale(server: Server, path: str, timeout: float) -> None:
    """Wait for a fresh generation of `path`, then until it is past its revalidate.

    No request is sent after the HIT, so the run's first request finds the page stale
    and starts the regeneration that the rest of the burst is served STALE during.
    """
    def probe() -> Reply | None:
        reply = server.get(path)
        return reply if reply.cache == "HIT" else None

    reply = poll_until(f"{server.name} {path} to finish regenerating (HIT)",
                       time.monotonic() + timeout, probe)
    seen = time.monotonic()  # the generation was produced before this moment
    revalidate = s_maxage(reply) or STALE_REVALIDATE
    time.sleep(max(0.0, seen + revalidate + 0.25 - time.monotonic()))


# --- scenarios and report ------------------------------------------------------------------


@dataclasses.dataclass
class Scenario:
    name: str
    isr: Server
    baseline: Server
    path: str
    prepare: Callable[[], None]  # brings isr's page into the scenario's state
    isr_runs: list[Report] = dataclasses.field(default_factory=list)
    baseline_runs: list[Report] = dataclasses.field(default_factory=list)
    log_writes: int = 0  # isr runs during which the log store on disk changed

    def ratios(self, field: str) -> list[float]:
        return [figure(i, field) / figure(b, field)
                for i, b in zip(self.isr_runs, self.baseline_runs, strict=True)]

    def median(self, runs: list[Report], field: str) -> float:
        return statistics.median(figure(r, field) for r in runs)


def figure(run: Report, field: str) -> float:
    """rps, p50_ms, p99_ms or max_ms of a load run."""
    if field == "rps":
        return float(run.achieved_rate)
    return float(run.latency_ms["all"][field.removesuffix("_ms")])


def cache_share(runs: list[Report]) -> str:
    """Each x-isr-cache value's share of all answers of `runs`, e.g. "HIT 100.0%"."""
    total: Counter[str] = Counter()
    for run in runs:
        total.update({state: n for state, n in run.states.items() if n})
    n = sum(total.values())
    if not n:
        return "(none)"
    return " ".join(f"{value} {100 * k / n:.1f}%" for value, k in total.most_common())


def run_problems(name: str, run: Report) -> list[str]:
    """One line per kind of error answer and per warning of the load core (but its CPU share,
    which the table shows)."""
    notes = [f"{name}: {n} x {key}" for key, n in run.errors_by.items()]
    return notes + [f"{name}: {w}" for w in run.warnings if not w.startswith("the load generator used")]


def fmt_ratio(share: float) -> str:
    return f"{share:.2f}"


def table_rows(scenarios: list[Scenario]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("scenario", "isr req/s", "base req/s", "ratio", "isr p50/p99 ms",
             "base p50/p99 ms", "p50 x", "p99 x", "load CPU base/isr", "isr x-isr-cache")]
    for s in scenarios:
        rows.append((
            s.name,
            f"{s.median(s.isr_runs, 'rps'):,.0f}",
            f"{s.median(s.baseline_runs, 'rps'):,.0f}",
            fmt_ratio(statistics.median(s.ratios("rps"))),
            f"{s.median(s.isr_runs, 'p50_ms'):.2f} / {s.median(s.isr_runs, 'p99_ms'):.2f}",
            f"{s.median(s.baseline_runs, 'p50_ms'):.2f} / "
            f"{s.median(s.baseline_runs, 'p99_ms'):.2f}",
            fmt_ratio(statistics.median(s.ratios("p50_ms"))),
            fmt_ratio(statistics.median(s.ratios("p99_ms"))),
            f"{statistics.median(r.workload['generator_cpu'] for r in s.baseline_runs):.0%} / "
            f"{statistics.median(r.workload['generator_cpu'] for r in s.isr_runs):.0%}",
            cache_share(s.isr_runs),
        ))
    return rows


def problems(scenarios: list[Scenario]) -> list[str]:
    return [note for s in scenarios
            for side, runs in (("isr", s.isr_runs), ("baseline", s.baseline_runs))
            for n, run in enumerate(runs, 1)
            for note in run_problems(f"{s.name}, {side}, round {n}", run)]


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run (5)")
    parser.add_argument("--connections", type=int, default=LOAD_CONNECTIONS,
                        help=f"clients of the closed loop, each one request at a time ({LOAD_CONNECTIONS})")
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline/isr pairs per scenario; the table shows medians (3)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of unrecorded load on every server first (1; 0: none)")
    parser.add_argument("--stale-sleep", type=float, default=None,
                        help="seconds the STALE page's get_static_props sleeps (default: "
                             "duration + 1, so that one regeneration spans the run)")
    parser.add_argument("--baseline-kind", choices=("server", "app"), default="server",
                        help="baseline on aiohttp's low-level web.Server (default) or on a "
                             "web.Application with one route")
    parser.add_argument("--startup-timeout", type=float, default=60.0,
                        help="seconds a server may take to listen or a page to turn HIT (60)")
    parser.add_argument("--isr", default=DEFAULT_ISR,
                        help="command that runs isr (default: this Python's `-m isr`)")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 when the HIT ratio is below {HIT_TARGET}")
    parser.add_argument("--json", type=Path, help="also write all measurements to this file")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rounds < 1 or args.warmup < 0 or args.connections < 1:
        parser.error("--duration must be > 0, --rounds >= 1, --warmup >= 0 and --connections >= 1")
    return args


def json_url(html: bytes, path: str) -> str:
    """The JSON variant's URL, from the build id embedded in the page's HTML."""
    match = DATA_SCRIPT.search(html)
    if match is None:
        raise BenchError(f'{path}: no <script id="__ISR_DATA__"> in its HTML')
    build_id = json.loads(match.group(1))["build_id"]
    return f"/_isr/data/{build_id}/{'index' if path == '/' else path.strip('/')}.json"


def start_baseline(stack: ExitStack, name: str, reply: Reply, args: argparse.Namespace,
                   port: int, tmp: Path) -> Server:
    body = tmp / f"{name}.body"
    body.write_bytes(reply.body)
    content_type = reply.headers.get("content-type", "application/octet-stream")
    server = stack.enter_context(running(
        baseline_server(name, body, content_type, args.baseline_kind, port, tmp)))
    server.wait_listening(args.startup_timeout)
    if server.get("/").body != reply.body:
        raise server.fail("does not serve the bytes it was given")
    return server


def setup(stack: ExitStack, args: argparse.Namespace, tmp: Path) -> list[Scenario]:
    ports = free_ports(5)
    env = dict(os.environ, ISR_BENCH_STALE_SLEEP=str(args.stale_sleep))
    isr = shlex.split(args.isr)
    site = stack.enter_context(running(isr_server(
        isr, "isr-example", EXAMPLE_SITE, ports[0], tmp / "cache-example", tmp, env, HTTP_TIMEOUT)))
    bench = stack.enter_context(running(isr_server(
        isr, "isr-stale", STALE_SITE, ports[1], tmp / "cache-stale", tmp, env,
        HTTP_TIMEOUT + args.stale_sleep)))
    for server in (site, bench):
        server.wait_listening(args.startup_timeout)
        log(f"{server.name}: listening on {server.base}")

    html = warm(site, "/", args.startup_timeout)
    data_path = json_url(html.body, "/")
    data = warm(site, data_path, args.startup_timeout)
    stale = warm(bench, STALE_PATH, args.startup_timeout + args.stale_sleep)
    log(f"warm: / {len(html.body):,} B, {data_path} {len(data.body):,} B, "
        f"{STALE_PATH} {len(stale.body):,} B; / has {html.headers.get('cache-control')!r}")
    if s_maxage(html) - 1 < args.duration:
        log(f"note: / revalidates every {s_maxage(html):g}s, less than a run: "
            "some of its answers will be STALE")

    fresh_for = args.duration + 1
    timeout = args.startup_timeout
    return [
        Scenario("HIT /", site, start_baseline(stack, "baseline-html", html, args, ports[2], tmp),
                 "/", lambda: ensure_fresh(site, "/", fresh_for, timeout)),
        Scenario("JSON /", site, start_baseline(stack, "baseline-json", data, args, ports[3], tmp),
                 data_path, lambda: ensure_fresh(site, data_path, fresh_for, timeout)),
        Scenario(f"STALE {STALE_PATH}", bench,
                 start_baseline(stack, "baseline-stale", stale, args, ports[4], tmp),
                 STALE_PATH, lambda: make_stale(bench, STALE_PATH, timeout + args.stale_sleep)),
    ]


def measure(scenarios: list[Scenario], args: argparse.Namespace) -> None:
    def load(server: Server, path: str, seconds: float) -> Report:
        return run_load(server.base, path, seconds, args.connections)

    if args.warmup:
        log(f"warm-up: {args.warmup:g}s of load on each server")
        for s in scenarios:
            for server in (s.baseline, s.isr):
                load(server, s.path, args.warmup)
    for n in range(1, args.rounds + 1):
        for s in scenarios:
            s.baseline_runs.append(load(s.baseline, s.path, args.duration))
            s.prepare()
            hit = s.name.startswith("HIT")
            if hit:
                time.sleep(LOG_FLUSH_WAIT_S)  # records of what prepare() did reach the disk first
            before = log_store_state()
            s.isr_runs.append(load(s.isr, s.path, args.duration))
            if hit:
                time.sleep(LOG_FLUSH_WAIT_S)
                if log_store_state() != before:
                    s.log_writes += 1
            b, i = s.baseline_runs[-1], s.isr_runs[-1]
            log(f"round {n}/{args.rounds}  {s.name:<13} baseline {b.achieved_rate:9,.0f} req/s  "
                f"isr {i.achieved_rate:9,.0f} req/s  ratio {i.achieved_rate / b.achieved_rate:.2f}  "
                f"[{' '.join(f'{k} {v}' for k, v in i.states.items() if v) or '-'}]  "
                f"load generator CPU {b.workload['generator_cpu']:.0%} / {i.workload['generator_cpu']:.0%}")


LOG_FLUSH_WAIT_S = 1.0  # the server writes log records to disk every 0.5 s


def log_store_state() -> list[tuple[str, int, int]]:
    """Name, size and mtime of every file of the example site's log store."""
    folder = EXAMPLE_SITE / ".isr" / "logs"
    return sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in folder.rglob("*") if f.is_file())


GENERATOR_BOUND = 0.9  # share of a core the load generator used, above which it set the pace


def report(scenarios: list[Scenario], args: argparse.Namespace) -> bool:
    load = load_description(args)
    print(f"\n{load}, {args.rounds} round(s) of baseline then isr; medians over rounds; "
          f"ratio = isr / baseline ({os.cpu_count()} CPUs shared by the load generator and the "
          f"servers, one process each; baseline: aiohttp {args.baseline_kind}, uvloop)\n")
    print_table(table_rows(scenarios))
    for note in problems(scenarios):
        print(f"warning: {note}")
    for s in scenarios:
        cpu = statistics.median(r.workload["generator_cpu"] for r in s.baseline_runs)
        if cpu >= GENERATOR_BOUND:
            print(f"note: {s.name}: the load generator used {cpu:.0%} of a core against the baseline, "
                  f"so the baseline's req/s is the generator's ceiling and the ratio overstates isr")
    writes = scenarios[0].log_writes
    print(f"log store written during HIT runs: {'no' if not writes else f'yes, in {writes} run(s)'}")
    hit = statistics.median(scenarios[0].ratios("rps"))
    ok = hit >= HIT_TARGET
    print(f"\ntarget: HIT req/s >= {HIT_TARGET} x baseline: {'met' if ok else 'NOT met'} "
          f"({hit:.2f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps({
            "load": load, "rounds": args.rounds, "baseline_kind": args.baseline_kind,
            "stale_sleep": args.stale_sleep,
            "scenarios": {s.name: {"path": s.path,
                                   "isr": [run_json(r) for r in s.isr_runs],
                                   "baseline": [run_json(r) for r in s.baseline_runs]}
                          for s in scenarios}}, indent=2) + "\n")
    return ok


def load_description(args: argparse.Namespace) -> str:
    return (f"isr bench load core, closed loop, {args.connections} connections, "
            f"{args.duration:g} s runs")


def run_json(run: Report) -> dict[str, object]:
    """A load run's report for --json, without its per-second series."""
    return {key: value for key, value in run.as_dict().items() if key != "series"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stale_sleep is None:
        args.stale_sleep = args.duration + 1

    def body(stack: ExitStack, tmp: Path) -> int:
        scenarios = setup(stack, args, tmp)
        measure(scenarios, args)
        ok = report(scenarios, args)
        return 1 if args.check and not ok else 0

    return bench_main("hit_path", body, need_wrk=False)


if __name__ == "__main__":
    sys.exit(main())
