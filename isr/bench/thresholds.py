"""`--threshold EXPR`: pass/fail conditions on a report that set the exit code (as k6's).

    p99<50ms   MISS.p99<=200ms   hit_ratio>0.95   errors==0   stale_share<10%

A metric is one of METRICS (latency points may name a state: `HIT.p99`); a latency takes
`ms` or `s` (bare numbers are ms), a ratio takes a fraction or `%`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from isr.bench.report import STATES

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
}  # fmt: skip
LATENCY = ("p50", "p90", "p99", "max")
RATIOS = ("hit_ratio", "stale_share", "error_ratio")
COUNTS = ("errors", "requests", "achieved_rate", "regenerations", "staleness_p99", "staleness_max", "revalidation_to_fresh_p99")
SECONDS = {None: 1.0, "s": 1.0, "ms": 0.001}
MILLISECONDS = {None: 1.0, "ms": 1.0, "s": 1000.0}
COUNT_UNITS: dict[str, dict[str | None, float]] = {
    name: SECONDS if name.startswith("staleness") else MILLISECONDS if name.endswith("_p99") else {None: 1.0} for name in COUNTS
}
EXPR = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*(\d+\.?\d*|\.\d+)\s*(ms|s|%)?\s*$")


@dataclass(frozen=True)
class Threshold:
    text: str
    metric: str
    op: str
    limit: float  # in the metric's unit: ms for latency, a fraction for ratios

    def failure(self, report: dict[str, Any]) -> str | None:
        """None when the report meets it, else a line saying by how much it did not."""
        value = metric(report, self.metric)
        if OPERATORS[self.op](value, self.limit):
            return None
        return f"{self.text}: {self.metric} is {value:g}"


def parse_threshold(text: str) -> Threshold:
    """ValueError with the reason for anything that is not a known metric, operator, number."""
    match = EXPR.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not METRIC<OP>VALUE, e.g. p99<50ms or hit_ratio>0.95")
    name, op, number, unit = match.groups()
    state, _, point = name.rpartition(".")
    if point in LATENCY and state in ("", *STATES):
        scale = {"s": 1000.0, "ms": 1.0, None: 1.0}.get(unit)
        if scale is None:
            raise ValueError(f"{text!r}: a latency is in ms or s")
        return Threshold(text, name, op, float(number) * scale)
    if name in RATIOS:
        if unit not in ("%", None):
            raise ValueError(f"{text!r}: a ratio is a fraction (0.95) or a percentage (95%)")
        return Threshold(text, name, op, float(number) / (100 if unit else 1))
    if name in COUNTS:
        units = COUNT_UNITS[name]
        scale = units.get(unit)
        if scale is None:
            allowed = " or ".join(u for u in units if u)
            raise ValueError(f"{text!r}: {name} is {'in ' + allowed if allowed else 'a plain number'}, not in {unit}")
        return Threshold(text, name, op, float(number) * scale)
    known = ", ".join([*LATENCY, "HIT.p99", *RATIOS, *COUNTS])
    raise ValueError(f"{text!r}: unknown metric {name!r}; metrics are {known}")


def metric(report: dict[str, Any], name: str) -> float:
    """A figure of a report dict (as written by --json) by its threshold name."""
    state, _, point = name.rpartition(".")
    if point in LATENCY:
        return float(report["latency_ms"][state or "all"][point])
    states = report["states"]
    served = sum(states.values())
    figures: dict[str, float] = {
        "hit_ratio": states.get("HIT", 0) / served if served else 0.0,
        "stale_share": float(report["staleness_s"]["stale_share"]),
        "error_ratio": report["errors"] / report["requests"] if report["requests"] else 0.0,
        "errors": report["errors"], "requests": report["requests"], "achieved_rate": report["achieved_rate"],
        "regenerations": report.get("regenerations", 0),
        "staleness_p99": report["staleness_s"]["p99"], "staleness_max": report["staleness_s"]["max"],
        "revalidation_to_fresh_p99": report.get("revalidation_to_fresh_ms", {}).get("p99", 0.0),
    }  # fmt: skip
    return float(figures[name])


def failures(thresholds: list[Threshold], report: dict[str, Any]) -> list[str]:
    return [line for threshold in thresholds if (line := threshold.failure(report)) is not None]
