"""Cost of the function runtime: warm invocation overhead and cold start.

Runs `pages/api/noop.py` of benchmarks/site (a handler that only answers "ok"):
- in-process: the function side (Renderer) called directly, as if there were no runtime;
- warm worker: through the WorkerInvoker, worker already started (pipe + pickle + loop);
- cold start: a new WorkerInvoker per call, so the first invocation starts its worker.
The added cost per invocation is warm p50 minus in-process p50.

    .venv/bin/python benchmarks/invocation.py [--calls 3000] [--cold 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from isr.runtime.invocation import Invocation
from isr.runtime.pool import WorkerInvoker
from isr.runtime.renderer import Renderer
from isr.site.site import load_site

SITE = Path(__file__).parent / "site"
EVENT: dict[str, Any] = {
    "method": "GET", "path": "/api/noop", "params": {}, "query": {}, "headers": {}, "cookies": {}, "body": b"",
}


async def timings(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], p: float) -> float:
    return sorted(samples)[min(int(len(samples) * p), len(samples) - 1)]


async def main(calls: int, cold: int) -> None:
    site = load_site(SITE)
    route = site.routes.by_page["/api/noop"]
    invocation = Invocation(route.file, "api", EVENT, route.function)

    renderer = Renderer(site)
    inproc = await timings(lambda: renderer.run(invocation), calls)

    invoker = WorkerInvoker(site)
    await invoker.invoke(invocation)  # start the worker
    warm = await timings(lambda: invoker.invoke(invocation), calls)
    await invoker.close()

    async def cold_call() -> None:
        fresh = WorkerInvoker(site)
        await fresh.invoke(invocation)
        await fresh.close()

    starts = await timings(cold_call, cold)

    print(f"{'':>22} {'p50 ms':>8} {'p99 ms':>8}")
    for name, samples in (("in-process", inproc), ("warm worker", warm), ("cold start", starts)):
        print(f"{name:>22} {statistics.median(samples):8.3f} {percentile(samples, 0.99):8.3f}")
    added = statistics.median(warm) - statistics.median(inproc)
    print(f"added per warm invocation (p50): {added:.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--cold", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.cold))
