"""The load core: what to request when (`arrivals`), and sending it to a server.

Open loop by default: arrivals are on a schedule and do not wait for answers, and each
latency runs from the intended send time, so a stalled server cannot hide it (the
coordinated-omission correction of wrk2).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from isr.bench.popularity import Zipf

BATCH = 1024  # paths drawn from the popularity curve at a time


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
