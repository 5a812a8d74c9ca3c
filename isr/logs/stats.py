"""Counters for the dashboard and /_isr/metrics, updated off the hot path except one add.

The dashboard's charts over time come from a bounded ring of per-second buckets that a
periodic sampler (`Stats.sample`, from the log hub's flush loop) cuts from those counters:
nothing per request beyond the counters' adds.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from isr.constants import HIT, MISS, STALE
from isr.logs.record import LogRecord

DURATION_SAMPLES = 1000  # per function, for p50/p99
SERIES_S = 1  # seconds per bucket of the charts
SERIES_LENGTH = 600  # buckets kept: the last ten minutes
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
        return _rank(sorted(self.durations), p)


def _rank(ordered: list[float], p: float) -> float:
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
        self.series: deque[dict[str, Any]] = deque(maxlen=SERIES_LENGTH)
        self._bucket = 0  # the second the counters since `_last` belong to (0: not sampled yet)
        self._last: dict[str, int] = {}  # counter -> its value when the last bucket was cut

    def sample(self, now: float) -> None:
        """Cut a bucket when a new second began: what the counters gained since the last one."""
        bucket = int(now) // SERIES_S * SERIES_S
        if bucket == self._bucket:
            return
        counters = {HIT: self.hit, STALE: self.stale, MISS: self.miss}
        for name, f in self.functions.items():
            counters[name], counters["!" + name] = f.invocations, f.errors
        if self._bucket:
            delta = {key: value - self._last.get(key, 0) for key, value in counters.items()}
            functions = {}
            for name, f in self.functions.items():
                ordered = sorted(list(f.durations)[len(f.durations) - min(delta[name], len(f.durations)) :])
                functions[name] = {
                    "invocations": delta[name],
                    "errors": delta["!" + name],
                    "p50_ms": _rank(ordered, 0.5),
                    "p99_ms": _rank(ordered, 0.99),
                }
            self.series.append(
                {"t": self._bucket, HIT: delta[HIT], STALE: delta[STALE], MISS: delta[MISS], "functions": functions}
            )
        self._bucket, self._last = bucket, counters

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
