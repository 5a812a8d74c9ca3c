"""Scale benchmark: `isr build` and `isr serve` of a site of N pages, loaded one page vs all pages.

    .venv/bin/python benchmarks/scale.py [--pages 20000] [--duration 5] [--rounds 3]
        [--cache-memory SIZE] [--cache-disk SIZE] [--workers N] [--json FILE]

Writes a site of N pages `/item/<id>` (benchmarks/item_site.py: about 4 KB of props each,
two tags each, `revalidate = False`) into a temporary folder, times `isr build` on it
(pages/s), serves the build with `isr serve` and GETs every page once, then loads it in
rounds of three wrk runs: one page, uniform random over all N pages, and Zipf (s = 1)
over all N pages (benchmarks/paths.lua picks the paths), and then each load once more,
briefly, counting x-isr-cache values. The table gives each load's req/s and p99 as
ratios to the one-page run of the same round, and the server's RSS after each run.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import shlex
import statistics
import sys
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import item_site
from harness import (
    BENCH_DIR,
    DEFAULT_ISR,
    REPO,
    Server,
    WrkResult,
    bench_main,
    cache_share,
    free_ports,
    isr_server,
    isr_server_pids,
    log,
    print_table,
    rss_mib,
    run_problems,
    run_wrk,
    running,
    timed_command,
    wrk_command,
)

PATHS_SCRIPT = BENCH_DIR / "paths.lua"
LOADS = {"one": "one page", "uniform": "uniform", "zipf": "Zipf s=1"}  # wrk runs of a round
UNIFORM_TARGET = 0.8  # the issue: uniform over all pages reaches 0.8 of one page's req/s...
P99_TARGET = 2.0  # ...with p99 at most 2x one page's
DISK_TARGET = 0.5  # ...and when the pages do not fit in memory, at least 0.5 (p99 free)
WARM_CONNECTIONS = 64
CHECK_S = 1.0  # seconds of each load, counted, after the rounds: counting costs wrk (paths.lua)


@dataclasses.dataclass
class Build:
    pages: int
    seconds: float
    cache_mib: float  # the cache folder's size after the build

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds


@dataclasses.dataclass
class Warm:
    """One GET of every page, by a Python client: it moves the pages from disk into memory."""
    seconds: float
    status: Counter[str]
    cache: Counter[str]
    rss_mib: list[float]


@dataclasses.dataclass
class Run:
    load: str
    result: WrkResult
    rss_mib: list[float]  # of every server process, after the run


# --- steps ---------------------------------------------------------------------------------


def folder_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def run_build(isr: list[str], site: Path, cache: Path, log_path: Path, pages: int) -> Build:
    """`isr build SITE --cache CACHE`, timed by its wall clock (start-up included)."""
    seconds = timed_command("isr build", [*isr, "build", str(site), "--cache", str(cache)], REPO,
                            log_path)
    return Build(pages, seconds, folder_mib(cache))


def server_rss(server: Server) -> list[float]:
    """Each server process's RSS with its disk cache's read process's."""
    return [rss_mib(pid) + sum(map(rss_mib, read_processes(pid))) for pid in isr_server_pids(server)]


def read_processes(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"isr.cache.read_process" in Path(f"/proc/{c}/cmdline").read_bytes()]


async def _get_all(base: str, count: int) -> tuple[Counter[str], Counter[str]]:
    status, cache = Counter[str](), Counter[str]()
    ids = iter(range(1, count + 1))
    # No Accept-Encoding, like wrk: the answers are the identity variants wrk will get.
    async with aiohttp.ClientSession(base, skip_auto_headers=("Accept-Encoding",),
                                     connector=aiohttp.TCPConnector(limit=WARM_CONNECTIONS)) as session:
        async def worker() -> None:
            for item_id in ids:
                async with session.get(f"{item_site.ROUTE}{item_id}") as resp:
                    await resp.read()
                    status[str(resp.status)] += 1
                    cache[resp.headers.get("x-isr-cache", "-")] += 1

        await asyncio.gather(*(worker() for _ in range(WARM_CONNECTIONS)))
    return status, cache


def warm_all(server: Server, count: int) -> Warm:
    started = time.perf_counter()
    try:
        status, cache = asyncio.run(_get_all(server.base, count))
    except (OSError, aiohttp.ClientError) as exc:  # TimeoutError is an OSError
        raise server.fail(f"warm pass failed: {exc!r}") from exc
    return Warm(time.perf_counter() - started, status, cache, server_rss(server))


def load(server: Server, kind: str, pages: int, duration: float, count: bool = False) -> Run:
    """A wrk run of one load; `count`: counting x-isr-cache values and statuses too."""
    result = run_wrk(server.base + f"{item_site.ROUTE}1", duration, PATHS_SCRIPT,
                     (kind, str(pages), item_site.ROUTE, *(("count",) if count else ())))
    return Run(kind, result, server_rss(server))


# --- report --------------------------------------------------------------------------------


def not_200(result: WrkResult) -> int:
    """Answers other than 200 of a counted run; of a measured run, those wrk counts (400 and over)."""
    if not result.status:
        return result.non_2xx
    return sum(n for status, n in result.status.items() if status != "200")


def table_rows(rounds: list[dict[str, Run]], checks: dict[str, Run]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("load", "req/s", "ratio", "p50 ms", "p99 ms", "p99 x",
                                    "max ms", "RSS MiB", "not 200", "x-isr-cache")]
    for kind, name in LOADS.items():
        runs = [r[kind] for r in rounds]
        results = [r.result for r in runs]
        one = [r["one"].result for r in rounds]
        rows.append((
            name,
            f"{statistics.median([r.rps for r in results]):,.0f}",
            f"{statistics.median([r.rps / o.rps for r, o in zip(results, one, strict=True)]):.2f}",
            f"{statistics.median([r.p50_ms for r in results]):.2f}",
            f"{statistics.median([r.p99_ms for r in results]):.2f}",
            f"{statistics.median([r.p99_ms / o.p99_ms for r, o in zip(results, one, strict=True)]):.2f}",
            f"{max(r.max_ms for r in results):,.0f}",
            " ".join(f"{mib:,.0f}" for mib in runs[-1].rss_mib),
            f"{sum(not_200(r) for r in [*results, checks[kind].result]):,}",
            cache_share([checks[kind].result]),
        ))
    return rows


def held_in_memory(server: Server) -> int:
    """The records the server process answering holds in memory (its /_isr/metrics)."""
    with urllib.request.urlopen(server.base + "/_isr/metrics", timeout=10) as resp:
        found = re.search(r"^isr_cache_memory_records (\S+)$", resp.read().decode(), re.M)
    if found is None:
        raise server.fail("/_isr/metrics has no isr_cache_memory_records")
    return int(float(found[1]))


def verdict(ratio: float, p99: float, in_memory: bool) -> str:
    if in_memory:
        met = ratio >= UNIFORM_TARGET and p99 <= P99_TARGET
        return (f"target (all pages in memory): uniform req/s >= {UNIFORM_TARGET} x one page's and "
                f"p99 <= {P99_TARGET:g} x: {'met' if met else 'NOT met'} ({ratio:.2f}, {p99:.2f})")
    return (f"target (pages beyond memory, read from disk): uniform req/s >= {DISK_TARGET} x one "
            f"page's: {'met' if ratio >= DISK_TARGET else 'NOT met'} ({ratio:.2f})")


def report(args: argparse.Namespace, build: Build, warm: Warm | None, start_rss: list[float],
           rounds: list[dict[str, Run]], checks: dict[str, Run], held: int) -> int:
    options = serve_options(args)
    print(f"\n{args.pages:,} pages  ·  build: {build.seconds:.1f} s, {build.pages_per_s:,.0f} pages/s "
          f"(wall time of `isr build`), cache folder {build.cache_mib:,.0f} MiB")
    print(f"serve options: {shlex.join(options) or '(defaults)'}; server RSS after start: "
          f"{' '.join(f'{m:,.0f}' for m in start_rss)} MiB")
    if warm is None:
        print("warm pass: skipped (--no-warm): the first round loads pages from disk")
    else:
        n = sum(warm.status.values())
        print(f"warm pass (one GET of every page, Python client, {WARM_CONNECTIONS} connections): "
              f"{warm.seconds:.1f} s, {n / warm.seconds:,.0f} req/s, "
              f"{' '.join(f'{k} {v:,}' for k, v in warm.cache.most_common())}, "
              f"RSS after {' '.join(f'{m:,.0f}' for m in warm.rss_mib)} MiB")
    print(f"\n{wrk_command(args.duration)} -s paths.lua, {args.rounds} round(s) of "
          f"one page / uniform / Zipf over all {args.pages:,} pages; medians over rounds; "
          f"ratio and p99 x = the load's / the one-page run's of the same round; max ms: the "
          f"highest of the rounds; RSS: every server process (with its cache's read process) after the last round's run; "
          f"not 200 and x-isr-cache: the rounds' answers of 400 and over, and what {CHECK_S:g} s of each load "
          f"counted after them\n")
    print_table(table_rows(rounds, checks))
    labelled = [(f"round {n}", run) for n, runs in enumerate(rounds, 1) for run in runs.values()]
    notes = [note for label, run in [*labelled, *(("check", run) for run in checks.values())]
             for note in run_problems(f"{label}, {LOADS[run.load]}", run.result)]
    if warm is not None and set(warm.status) != {"200"}:
        notes.append(f"warm pass: statuses {dict(warm.status)}")
    for note in notes:
        print(f"warning: {note}")
    ratio = statistics.median([r["uniform"].result.rps / r["one"].result.rps for r in rounds])
    p99 = statistics.median([r["uniform"].result.p99_ms / r["one"].result.p99_ms for r in rounds])
    print(f"\nheld in memory after the rounds: {held:,} of {args.pages:,} pages (one process's)")
    print(verdict(ratio, p99, held >= args.pages), flush=True)
    if args.json:
        args.json.write_text(json.dumps({
            "pages": args.pages, "serve_options": options, "wrk": wrk_command(args.duration),
            "build": {**vars(build), "pages_per_s": build.pages_per_s},
            "warm": None if warm is None else vars(warm), "start_rss_mib": start_rss,
            "rounds": [{kind: {**vars(run.result), "rss_mib": run.rss_mib}
                        for kind, run in r.items()} for r in rounds],
            "checks": {kind: vars(run.result) for kind, run in checks.items()}}, indent=2) + "\n")
    return 1 if notes else 0


# --- main ----------------------------------------------------------------------------------


def serve_options(args: argparse.Namespace) -> list[str]:
    """The `isr serve` options given on our command line, passed on as they are."""
    given = (("--cache-memory", args.cache_memory), ("--cache-disk", args.cache_disk),
             ("--workers", args.workers))
    return [part for flag, value in given if value is not None for part in (flag, str(value))]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pages", type=int, default=20_000, help="pages in the site (20000)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (5)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of one page / uniform / Zipf; the table shows medians (3)")
    parser.add_argument("--cache-memory", metavar="SIZE", help="passed on to isr serve")
    parser.add_argument("--cache-disk", metavar="SIZE", help="passed on to isr serve")
    parser.add_argument("--workers", type=int, metavar="N", help="passed on to isr serve")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of unrecorded wrk load of each kind before the rounds (1; 0: none)")
    parser.add_argument("--no-warm", action="store_true",
                        help="skip the pass that GETs every page once before the rounds")
    parser.add_argument("--startup-timeout", type=float, default=120.0,
                        help="seconds the server may take to listen (120)")
    parser.add_argument("--isr", default=DEFAULT_ISR,
                        help="command that runs isr (default: this Python's `-m isr`)")
    parser.add_argument("--json", type=Path, help="also write all measurements to this file")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.duration <= 0 or args.rounds < 1 or args.warmup < 0:
        parser.error("--pages and --rounds must be >= 1, --duration > 0 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    isr = shlex.split(args.isr)

    def body(stack: ExitStack, tmp: Path) -> int:
        site = tmp / "site"
        started = time.perf_counter()
        size = item_site.write_isr_site(site, args.pages)
        log(f"site: {args.pages:,} pages, {size / args.pages:,.0f} B of props each on average, "
            f"written in {time.perf_counter() - started:.1f} s to {site}")
        build = run_build(isr, site, tmp / "cache", tmp / "build.log", args.pages)
        log(f"build: {build.seconds:.1f} s, {build.pages_per_s:,.0f} pages/s")
        port = free_ports(1)[0]
        server = stack.enter_context(running(isr_server(
            isr, "isr-scale", site, port, tmp / "cache", tmp, dict(os.environ),
            extra=serve_options(args))))
        server.wait_listening(args.startup_timeout)
        start_rss = server_rss(server)
        log(f"{server.name}: listening on {server.base}, RSS {start_rss} MiB")
        warm = None
        if not args.no_warm:
            warm = warm_all(server, args.pages)
            log(f"warm pass: {warm.seconds:.1f} s, {dict(warm.cache)}, RSS {warm.rss_mib} MiB")
        if args.warmup:
            log(f"warm-up: {args.warmup:g}s of each load, not recorded")
            for kind in LOADS:
                load(server, kind, args.pages, args.warmup)
        rounds: list[dict[str, Run]] = []
        for n in range(1, args.rounds + 1):
            rounds.append({})
            for kind in LOADS:
                run = rounds[-1][kind] = load(server, kind, args.pages, args.duration)
                log(f"round {n}/{args.rounds}  {LOADS[kind]:<9} {run.result.rps:9,.0f} req/s  "
                    f"p99 {run.result.p99_ms:7.2f} ms  max {run.result.max_ms:6,.0f} ms  "
                    f"RSS {' '.join(f'{m:,.0f}' for m in run.rss_mib)} MiB")
        checks = {kind: load(server, kind, args.pages, CHECK_S, count=True) for kind in LOADS}
        log("check: " + ", ".join(f"{LOADS[kind]} {cache_share([run.result])}" for kind, run in checks.items()))
        return report(args, build, warm, start_rss, rounds, checks, held_in_memory(server))

    return bench_main("scale", body)


if __name__ == "__main__":
    sys.exit(main())
