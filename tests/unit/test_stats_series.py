"""The dashboard's time series: per-second buckets cut from the counters by the sampler."""

from __future__ import annotations

from isr.logs.record import LogRecord
from isr.logs.stats import SERIES_LENGTH, Stats


def test_sampler_cuts_per_second_buckets_from_the_counters() -> None:
    stats = Stats()
    stats.sample(1000.2)  # the first sample only starts the first bucket
    stats.hit += 5  # as the hot path does
    stats.miss += 1
    for ms in (10.0, 20.0, 300.0):
        stats.observe(LogRecord("pages/a.py", "/a", "render", 200, ms))
    stats.observe(LogRecord("pages/b.py", "/b", "api", 500, 5.0, error="FUNCTION_INVOCATION_FAILED"))
    stats.sample(1000.7)  # same second: nothing cut
    assert not stats.series
    stats.sample(1001.1)
    stats.stale += 2
    stats.observe(LogRecord("pages/a.py", "/a", "regenerate", 200, 40.0))
    stats.sample(1002.0)
    first, second = stats.series
    assert (first["t"], first["HIT"], first["STALE"], first["MISS"]) == (1000, 5, 0, 1)
    assert first["functions"]["pages/a.py"] == {"invocations": 3, "errors": 0, "p50_ms": 20.0, "p99_ms": 300.0}
    assert first["functions"]["pages/b.py"]["errors"] == 1
    assert (second["t"], second["HIT"], second["STALE"]) == (1001, 0, 2)
    assert second["functions"]["pages/a.py"] == {"invocations": 1, "errors": 0, "p50_ms": 40.0, "p99_ms": 40.0}
    assert second["functions"]["pages/b.py"]["invocations"] == 0


def test_series_is_bounded() -> None:
    stats = Stats()
    for second in range(SERIES_LENGTH + 50):
        stats.sample(float(second + 1))
    assert len(stats.series) == SERIES_LENGTH
