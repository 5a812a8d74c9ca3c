"""Redis cache benchmark: HIT throughput with `--cache redis://…` against the disk cache,
and how fast a revalidation on one instance reaches two others.

    .venv/bin/python benchmarks/redis_cache.py [--duration 5] [--rounds 3] [--revalidations 200]

Starts a redis-server of its own on a free port, one `isr serve` of the example site on a
disk cache and one on the Redis, and loads `/about` (a HIT from memory on both) with
`wrk -t2 -c64` alternately, round by round: the ratio is Redis req/s over disk req/s of
the same round (target: at least 0.95). Then it starts two more instances on the Redis
and revalidates `/` on the first `--revalidations` times; for each, the time from the
call's return until both others serve the new generation (p50 and p99; target p99
under 100 ms). Needs wrk and redis-server on the PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from harness import (
    DEFAULT_ISR,
    REPO,
    BenchError,
    Server,
    bench_main,
    free_ports,
    http_get,
    isr_server,
    log,
    print_table,
    run_wrk,
    running,
    wrk_command,
)

TOKEN = "redis-bench-token"
START_S = 60.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="redis_cache.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of disk + Redis runs (default 3)")
    parser.add_argument("--revalidations", type=int, default=200, help="revalidations timed (default 200)")
    return parser.parse_args(argv)


def start(stack: ExitStack, server: Server) -> Server:
    stack.enter_context(running(server))
    server.wait_listening(START_S)
    return server


def warm(server: Server, path: str) -> None:
    deadline = time.monotonic() + START_S
    while server.get(path).cache != "HIT":
        if time.monotonic() > deadline:
            raise server.fail(f"{path} never answered HIT")
        time.sleep(0.05)


def revalidate(server: Server, path: str) -> None:
    request = urllib.request.Request(
        f"{server.base}/_isr/revalidate", data=json.dumps({"paths": [path]}).encode(), method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        if answer.status != 200:
            raise server.fail(f"revalidate {path}: {answer.status}")


def propagation(a: Server, others: list[Server], path: str) -> float:
    old = http_get(a.base, path).headers.get("x-isr-generation")
    revalidate(a, path)
    returned = time.monotonic()
    for other in others:
        while http_get(other.base, path).headers.get("x-isr-generation") == old:
            if time.monotonic() - returned > 10:
                raise other.fail(f"never served the new generation of {path}")
    return time.monotonic() - returned


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def body(args: argparse.Namespace, stack: ExitStack, tmp: Path) -> int:
    if shutil.which("redis-server") is None:
        raise BenchError("redis-server not found; install it with `apt-get install -y redis-server`")
    ports = free_ports(5)
    redis = start(stack, Server("redis", ["redis-server", "--port", str(ports[0]), "--save", "", "--appendonly", "no"], ports[0], tmp / "redis.log"))
    url = f"redis://127.0.0.1:{ports[0]}/0"
    env = {**os.environ, "ISR_REVALIDATE_TOKEN": TOKEN}
    isr = DEFAULT_ISR.split()
    disk = start(stack, isr_server(isr, "disk", REPO, ports[1], tmp / "disk-cache", tmp, env))
    shared = start(stack, isr_server(isr, "redis-a", REPO, ports[2], tmp / "unused", tmp, env, extra=("--cache", url)))
    for server in (disk, shared):
        warm(server, "/about")
    rows, ratios = [], []
    for n in range(args.rounds):
        on_disk = run_wrk(f"{disk.base}/about", args.duration)
        on_redis = run_wrk(f"{shared.base}/about", args.duration)
        ratios.append(on_redis.rps / on_disk.rps)
        rows.append((str(n + 1), f"{on_disk.rps:,.0f}", f"{on_redis.rps:,.0f}", f"{ratios[-1]:.3f}"))
        log(f"round {n + 1}: disk {on_disk.rps:,.0f} req/s, redis {on_redis.rps:,.0f} req/s")
    print(f"HIT /about, {wrk_command(args.duration)}")
    print_table([("round", "disk req/s", "redis req/s", "redis/disk"), *rows])
    print(f"median ratio {statistics.median(ratios):.3f} (target >= 0.95)\n")
    others = [start(stack, isr_server(isr, f"redis-{name}", REPO, port, tmp / "unused", tmp, env, extra=("--cache", url))) for name, port in (("b", ports[3]), ("c", ports[4]))]
    for server in (shared, *others):
        warm(server, "/")
    times = [propagation(shared, others, "/") for _ in range(args.revalidations)]
    print(f"propagation of a revalidation on A to B and C, {len(times)} revalidations of /:")
    print(f"  p50 {percentile(times, 0.5) * 1000:.1f} ms, p99 {percentile(times, 0.99) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms (target p99 < 100 ms)")
    return 0 if redis.proc.poll() is None else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return bench_main("redis_cache.py", lambda stack, tmp: body(args, stack, tmp))


if __name__ == "__main__":
    sys.exit(main())
