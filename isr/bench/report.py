"""What a bench run found: outcomes of single requests summed up into the report (SPEC §8).

The load core (isr.bench.load) and the simulation (isr.bench.simulate) both produce a list
of `Outcome`s and call `summarize`, so a real run and a simulated one are reported by the
same arithmetic. `Report.as_dict()` is the `--json` file; `--compare` reads such files back.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from isr.constants import HIT, MISS, STALE
from isr.errors import IsrError

STATES = (HIT, STALE, MISS)
TOP_PATHS = 20  # paths listed in the report, the most requested first
LATENCY_POINTS = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))


class Outcome(NamedTuple):
    """One request: `t` is its intended send time in seconds since the measured part began
    (negative: warm-up, not counted); latency runs from that intended time."""

    t: float
    latency_ms: float
    state: str = ""  # its x-isr-cache, "" when it had none (an error, a public/ file)
    error: str = ""  # "" when it succeeded, else "503 FUNCTION_THROTTLED" or "connection: ..."
    staleness_s: float = 0.0  # Age minus s-maxage, for a response served STALE
    regenerated: bool = False  # its x-isr-generation differs from the path's previous one
    path: str = ""  # as requested


@dataclass
class Report:
    requests: int
    achieved_rate: float
    duration_s: float
    states: dict[str, int]
    errors: int
    latency_ms: dict[str, dict[str, float]]
    staleness_s: dict[str, float]
    target_rate: float | None = None  # None: closed loop
    elapsed_s: float = 0.0  # from the start of the measured part to its last answer
    errors_by: dict[str, int] = field(default_factory=dict)
    regenerations: int = 0
    revalidations: int = 0  # on-demand revalidations sent during the run
    revalidation_to_fresh_ms: dict[str, float] = field(default_factory=dict)
    paths_requested: int = 0  # distinct paths among the measured requests
    top_paths: list[dict[str, Any]] = field(default_factory=list)  # the TOP_PATHS most requested, by state
    series: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    workload: dict[str, Any] = field(default_factory=dict)  # what was asked: url, paths, mode

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    outcomes: Iterable[Outcome],
    duration_s: float,
    target_rate: float | None = None,
    to_fresh_ms: Sequence[float] = (),
    revalidations: int = 0,
    elapsed_s: float | None = None,
) -> Report:
    """The report of the measured outcomes (t >= 0) over `duration_s` seconds. The achieved
    rate is answers per second over the duration, or over `elapsed_s` (until the last of them
    came back) when that is longer: a server that falls behind an open loop answers the
    requests it was sent late, and they count at the pace it answered them."""
    measured = [o for o in outcomes if o.t >= 0]
    states = Counter(o.state for o in measured if o.state in STATES)
    errors_by = Counter(o.error for o in measured if o.error)
    latency = {"all": latency_points([o.latency_ms for o in measured])}
    for state in STATES:
        latency[state] = latency_points([o.latency_ms for o in measured if o.state == state and not o.error])
    served = sum(states.values())
    stale = sorted(o.staleness_s for o in measured if o.state == STALE)
    paths, top = top_paths(measured)
    return Report(
        requests=len(measured),
        achieved_rate=len(measured) / span if (span := max(duration_s, elapsed_s or 0.0)) > 0 else 0.0,
        duration_s=duration_s,
        elapsed_s=round(elapsed_s if elapsed_s is not None else duration_s, 3),
        states={state: states[state] for state in STATES},
        errors=sum(errors_by.values()),
        latency_ms=latency,
        staleness_s={
            "p50": percentile(stale, 0.5), "p99": percentile(stale, 0.99), "max": stale[-1] if stale else 0.0,
            "stale_share": states[STALE] / served if served else 0.0,
        },
        target_rate=target_rate,
        errors_by=dict(errors_by.most_common()),
        regenerations=sum(o.regenerated for o in measured),
        revalidations=revalidations,
        revalidation_to_fresh_ms=fresh_points(to_fresh_ms),
        paths_requested=paths,
        top_paths=top,
        series=series(measured),
    )


def top_paths(measured: list[Outcome], n: int = TOP_PATHS) -> tuple[int, list[dict[str, Any]]]:
    """The number of distinct paths, and the n most requested with their requests by state
    and their errors (one pass over the outcomes)."""
    by_state = Counter((o.path, o.state if not o.error else "errors") for o in measured)
    requests: Counter[str] = Counter()
    for (path, _), count in by_state.items():
        requests[path] += count
    top = [
        {"path": path, "requests": count, **{state: by_state[path, state] for state in (*STATES, "errors")}}
        for path, count in requests.most_common(n)
    ]
    return len(requests), top


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (0 for none): always a value that was seen."""
    if not ordered:
        return 0.0
    return float(ordered[max(math.ceil(q * len(ordered)) - 1, 0)])


def latency_points(values: list[float]) -> dict[str, float]:
    values.sort()
    points = {name: round(percentile(values, q), 3) for name, q in LATENCY_POINTS}
    return {"count": len(values), **points}


def fresh_points(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"count": len(ordered), "p50": round(percentile(ordered, 0.5), 3), "p99": round(percentile(ordered, 0.99), 3), "max": round(ordered[-1], 3) if ordered else 0.0}


def series(measured: list[Outcome]) -> list[dict[str, float]]:
    """Per-second buckets for the charts over time (every second of the run, empty ones too)."""
    buckets: dict[int, list[Outcome]] = defaultdict(list)
    for o in measured:
        buckets[int(o.t)].append(o)
    return [_bucket(t, buckets.get(t, [])) for t in range(max(buckets, default=-1) + 1)]


def _bucket(t: int, outcomes: list[Outcome]) -> dict[str, float]:
    latencies = sorted(o.latency_ms for o in outcomes)
    stale = sorted(o.staleness_s for o in outcomes if o.state == STALE)
    counts = Counter(o.state for o in outcomes if not o.error)
    return {
        "t": t, HIT: counts[HIT], STALE: counts[STALE], MISS: counts[MISS],
        "errors": sum(1 for o in outcomes if o.error),
        "p50_ms": round(percentile(latencies, 0.5), 3), "p99_ms": round(percentile(latencies, 0.99), 3),
        "staleness_p99_s": percentile(stale, 0.99), "regenerations": sum(o.regenerated for o in outcomes),
    }  # fmt: skip


def write_json(report: Report, path: Path) -> None:
    data = orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2) + b"\n"
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise IsrError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_writable(path: Path) -> None:
    """IsrError now, before a run, if the report could not be written to `path` after it."""
    if path.is_dir():
        raise IsrError(f"cannot write {path}: it is a folder")
    folder = path.parent
    if not folder.is_dir():
        raise IsrError(f"cannot write {path}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise IsrError(f"cannot write {path}: permission denied")
