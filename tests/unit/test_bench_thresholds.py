"""`--threshold EXPR`: the forms it takes, the clear error of a bad one, and judging a report."""

from __future__ import annotations

from typing import Any

import pytest

from isr.bench.report import Outcome, summarize
from isr.bench.thresholds import failures, metric, parse_threshold


@pytest.mark.parametrize(
    ("text", "name", "op", "limit"),
    [
        ("p99<50ms", "p99", "<", 50.0),
        ("p99<50", "p99", "<", 50.0),  # a bare latency is ms
        ("p50 <= 0.5s", "p50", "<=", 500.0),
        ("p90<.25s", "p90", "<", 250.0),
        ("max<2s", "max", "<", 2000.0),
        ("HIT.p99<=200ms", "HIT.p99", "<=", 200.0),
        ("MISS.max<1s", "MISS.max", "<", 1000.0),
        ("STALE.p50>=0", "STALE.p50", ">=", 0.0),
        ("hit_ratio>0.95", "hit_ratio", ">", 0.95),
        ("hit_ratio>95%", "hit_ratio", ">", 0.95),
        ("stale_share<10%", "stale_share", "<", 0.10),
        ("error_ratio==0", "error_ratio", "==", 0.0),
        ("errors==0", "errors", "==", 0.0),
        ("errors!=3", "errors", "!=", 3.0),
        ("requests>=1000", "requests", ">=", 1000.0),
        ("achieved_rate>4500", "achieved_rate", ">", 4500.0),
        ("regenerations<10", "regenerations", "<", 10.0),
        ("staleness_p99<2s", "staleness_p99", "<", 2.0),  # staleness is in seconds
        ("staleness_max<1500ms", "staleness_max", "<", 1.5),
        ("staleness_p99<3", "staleness_p99", "<", 3.0),
        ("revalidation_to_fresh_p99<2s", "revalidation_to_fresh_p99", "<", 2000.0),
        ("revalidation_to_fresh_p99<300ms", "revalidation_to_fresh_p99", "<", 300.0),
    ],
)
def test_valid_forms(text: str, name: str, op: str, limit: float) -> None:
    threshold = parse_threshold(text)
    assert (threshold.text, threshold.metric, threshold.op) == (text, name, op)
    assert threshold.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p99", r"'p99' is not METRIC<OP>VALUE, e.g. p99<50ms or hit_ratio>0.95"),
        ("p99<<5", "is not METRIC<OP>VALUE"),
        ("p99=5", "is not METRIC<OP>VALUE"),
        ("p99<", "is not METRIC<OP>VALUE"),
        ("p99<-5", "is not METRIC<OP>VALUE"),
        ("p99<1.2.3ms", "is not METRIC<OP>VALUE"),
        ("p99<5us", "is not METRIC<OP>VALUE"),
        ("<5", "is not METRIC<OP>VALUE"),
        ("", "is not METRIC<OP>VALUE"),
        ("p99<5%", r"'p99<5%': a latency is in ms or s"),
        ("hit_ratio>5ms", r"'hit_ratio>5ms': a ratio is a fraction \(0.95\) or a percentage \(95%\)"),
        ("requests>10%", r"'requests>10%': requests is a plain number, not in %"),
        ("staleness_p99<5%", r"staleness_p99 is in s or ms, not in %"),
        ("latency<5ms", r"'latency<5ms': unknown metric 'latency'; metrics are p50, p90, p99, max, HIT.p99"),
        ("FOO.p99<5", r"unknown metric 'FOO.p99'"),
        ("hit.p99<5", r"unknown metric 'hit.p99'"),  # states are upper case, as in x-isr-cache
    ],
)
def test_bad_forms_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_threshold(text)


def report() -> dict[str, Any]:
    """100 requests over 10 s: 80 HIT (1..80 ms), 10 STALE (5 s stale each), 5 MISS (200 ms), 5 errors."""
    outcomes = [Outcome(n / 10, float(n + 1), "HIT") for n in range(80)]
    outcomes += [Outcome(8 + n / 10, 2.0, "STALE", staleness_s=5.0, regenerated=n == 0) for n in range(10)]
    outcomes += [Outcome(9 + n / 10, 200.0, "MISS") for n in range(5)]
    outcomes += [Outcome(9.5 + n / 10, 1.0, error="503 FUNCTION_THROTTLED") for n in range(5)]
    return summarize(outcomes, 10.0, 10.0, to_fresh_ms=[120.0, 80.0]).as_dict()


def test_metrics_of_a_report() -> None:
    r = report()
    assert metric(r, "hit_ratio") == pytest.approx(80 / 95)  # of the answers with a cache state
    assert metric(r, "stale_share") == pytest.approx(10 / 95)
    assert metric(r, "error_ratio") == pytest.approx(0.05)
    assert metric(r, "errors") == 5 and metric(r, "requests") == 100
    assert metric(r, "achieved_rate") == pytest.approx(10.0)
    assert metric(r, "HIT.p99") == 80.0 and metric(r, "MISS.max") == 200.0
    assert metric(r, "staleness_max") == 5.0 and metric(r, "regenerations") == 1
    assert metric(r, "revalidation_to_fresh_p99") == 120.0


def test_failures_list_the_ones_not_met_with_the_value() -> None:
    r = report()
    met = [parse_threshold(t) for t in ("hit_ratio>0.8", "MISS.p99<=200ms", "errors<=5", "staleness_p99<6s")]
    assert failures(met, r) == []
    failed = [parse_threshold(t) for t in ("errors==0", "hit_ratio>=90%", "HIT.p99<0.05s", "requests>100")]
    assert failures(met + failed, r) == [
        "errors==0: errors is 5",
        "hit_ratio>=90%: hit_ratio is 0.842105",
        "HIT.p99<0.05s: HIT.p99 is 80",
        "requests>100: requests is 100",
    ]


def test_an_empty_report_fails_ratio_thresholds_rather_than_dividing_by_zero() -> None:
    empty = summarize([], 1.0).as_dict()
    assert metric(empty, "hit_ratio") == 0.0 and metric(empty, "error_ratio") == 0.0
    assert failures([parse_threshold("hit_ratio>0.5")], empty) == ["hit_ratio>0.5: hit_ratio is 0"]
