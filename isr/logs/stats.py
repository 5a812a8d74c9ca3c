"""Counters for the dashboard and /_isr/metrics, updated off the hot path except one add."""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

from isr.constants import HIT, MISS, STALE
from isr.logs.record import LogRecord

DURATION_SAMPLES = 1000  # per function, for p50/p99
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)  # seconds


@dataclass
class FunctionStats:
    invocations: int = 0
    errors: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # "ok" or an error code -> count
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=DURATION_SAMPLES))  # ms
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    seconds: float = 0.0  # sum of durations

    def observe(self, record: LogRecord) -> None:
        self.invocations += 1
        self.errors += record.is_error
        outcome = record.error or "ok"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.durations.append(record.duration_ms)
        self.buckets[bisect.bisect_left(BUCKETS, record.duration_ms / 1000)] += 1
        self.seconds += record.duration_ms / 1000

    def percentile(self, p: float) -> float:
        ordered = sorted(self.durations)
        return ordered[min(int(len(ordered) * p), len(ordered) - 1)] if ordered else 0.0


class Stats:
    def __init__(self) -> None:
        # Requests by x-isr-cache: the hot path adds to these plain ints, nothing more.
        self.hit = 0
        self.stale = 0
        self.miss = 0
        self.regenerations = 0
        self.failed_regenerations = 0
        self.functions: dict[str, FunctionStats] = {}

    def count(self, state: str | None) -> None:
        if state == HIT:
            self.hit += 1
        elif state == STALE:
            self.stale += 1
        elif state == MISS:
            self.miss += 1

    def observe(self, record: LogRecord) -> None:
        if record.cache == STALE and record.kind == "render":
            return  # the served request of a regeneration: not an invocation
        self.functions.setdefault(record.function, FunctionStats()).observe(record)
        if record.kind == "regenerate":
            self.regenerations += 1
            self.failed_regenerations += record.is_error

    @property
    def hit_ratio(self) -> float:
        served = self.hit + self.stale + self.miss
        return self.hit / served if served else 0.0
