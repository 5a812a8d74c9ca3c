"""The report arithmetic both a real run and a simulation go through (isr.bench.report.summarize):
percentiles, shares, the achieved rate, staleness, regenerations, per-path and per-second figures."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from isr.bench.report import Outcome, check_writable, fresh_points, percentile, summarize, write_json
from isr.errors import IsrError


def test_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]
    assert [percentile(values, q) for q in (0.5, 0.9, 0.99, 1.0)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([7.0], 0.5) == percentile([7.0], 0.99) == 7.0
    assert percentile([1.0, 2.0], 0.5) == 1.0 and percentile([1.0, 2.0], 0.51) == 2.0
    assert percentile([], 0.99) == 0.0
    assert percentile([1.0, 2.0, 3.0], 0.0) == 1.0  # never below the first value
    # always a value that was seen, never an interpolation
    assert percentile([1.0, 10.0, 100.0, 1000.0], 0.6) == 100.0


def test_counts_shares_rate_and_latency_by_state() -> None:
    outcomes = [Outcome(n * 0.01, float(n % 50 + 1), "HIT") for n in range(700)]  # 7 s of HIT
    outcomes += [Outcome(7 + n * 0.01, 20.0, "STALE", staleness_s=0.5) for n in range(200)]
    outcomes += [Outcome(9 + n * 0.01, 300.0 + n, "MISS") for n in range(90)]
    outcomes += [Outcome(9.9, 5000.0, error="connection: ServerDisconnectedError")] * 6
    outcomes += [Outcome(9.95, 2.0, error="503 FUNCTION_THROTTLED")] * 4
    report = summarize(outcomes, 10.0, target_rate=100.0)
    assert report.requests == 1000
    assert report.achieved_rate == pytest.approx(100.0) and report.target_rate == 100.0
    assert report.states == {"HIT": 700, "STALE": 200, "MISS": 90}
    assert report.errors == 10
    assert report.errors_by == {"connection: ServerDisconnectedError": 6, "503 FUNCTION_THROTTLED": 4}
    assert report.latency_ms["HIT"] == {"count": 700, "p50": 25.0, "p90": 45.0, "p99": 50.0, "max": 50.0}
    assert report.latency_ms["STALE"]["p99"] == 20.0
    assert report.latency_ms["MISS"] == {"count": 90, "p50": 344.0, "p90": 380.0, "p99": 389.0, "max": 389.0}
    # "all" includes the errors: a timeout is the slowest answer there is
    assert report.latency_ms["all"]["count"] == 1000 and report.latency_ms["all"]["max"] == 5000.0
    assert report.staleness_s["stale_share"] == pytest.approx(200 / 990)  # of the answers with a state


def test_warm_up_is_not_counted() -> None:
    outcomes = [Outcome(-1 + n * 0.1, 1.0, "MISS" if n < 5 else "HIT") for n in range(20)]  # 1 s of warm-up, then 1 s
    report = summarize(outcomes, 1.0, 10.0)
    assert report.requests == 10 and report.states == {"HIT": 10, "STALE": 0, "MISS": 0}
    assert report.achieved_rate == pytest.approx(10.0)


def test_achieved_rate_below_the_target_and_a_closed_loop() -> None:
    report = summarize([Outcome(n * 0.5, 1.0, "HIT") for n in range(8)], 4.0, target_rate=100.0)
    assert report.achieved_rate == pytest.approx(2.0) and report.target_rate == 100.0
    closed = summarize([Outcome(0.0, 1.0, "HIT")] * 30, 3.0)
    assert closed.achieved_rate == pytest.approx(10.0) and closed.target_rate is None
    assert summarize([], 0.0).achieved_rate == 0.0


def test_staleness_figures_are_of_the_stale_answers() -> None:
    stale = [Outcome(1.0, 1.0, "STALE", staleness_s=float(s)) for s in range(1, 101)]  # 1..100 s past
    fresh = [Outcome(1.0, 1.0, "HIT")] * 300
    report = summarize(stale + fresh, 2.0)
    assert report.staleness_s == {"p50": 50.0, "p99": 99.0, "max": 100.0, "stale_share": 0.25}
    none = summarize(fresh, 2.0)
    assert none.staleness_s == {"p50": 0.0, "p99": 0.0, "max": 0.0, "stale_share": 0.0}


def test_regenerations_and_time_to_fresh() -> None:
    outcomes = [Outcome(n * 0.1, 1.0, "HIT", regenerated=n in (3, 7)) for n in range(10)]
    report = summarize(outcomes, 1.0, to_fresh_ms=[300.0, 100.0, 200.0], revalidations=4)
    assert report.regenerations == 2 and report.revalidations == 4
    assert report.revalidation_to_fresh_ms == {"count": 3, "p50": 200.0, "p99": 300.0, "max": 300.0}
    assert fresh_points([]) == {"count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}


def test_paths_requested_and_the_most_requested_by_state() -> None:
    outcomes = [Outcome(0.0, 1.0, "MISS", path="/a")] + [Outcome(0.1, 1.0, "HIT", path="/a")] * 5
    outcomes += [Outcome(0.2, 1.0, "STALE", path="/b"), Outcome(0.3, 1.0, "HIT", path="/b")]
    outcomes += [Outcome(0.4, 1.0, error="404", path="/nope")]
    outcomes += [Outcome(0.5, 1.0, "MISS", path=f"/new/{n}") for n in range(30)]
    report = summarize(outcomes, 1.0)
    assert report.paths_requested == 33
    assert len(report.top_paths) == 20
    assert report.top_paths[0] == {"path": "/a", "requests": 6, "HIT": 5, "STALE": 0, "MISS": 1, "errors": 0}
    assert report.top_paths[1] == {"path": "/b", "requests": 2, "HIT": 1, "STALE": 1, "MISS": 0, "errors": 0}
    assert report.top_paths[2] == {"path": "/nope", "requests": 1, "HIT": 0, "STALE": 0, "MISS": 0, "errors": 1}


def test_series_has_every_second_of_the_run() -> None:
    outcomes = [Outcome(0.2, 10.0, "HIT"), Outcome(0.7, 30.0, "STALE", staleness_s=1.5, regenerated=True)]
    outcomes += [Outcome(2.5, 5.0, "MISS"), Outcome(2.6, 9.0, error="500")]
    series = summarize(outcomes, 3.0).series
    assert [b["t"] for b in series] == [0, 1, 2]
    assert series[0] == {
        "t": 0, "HIT": 1, "STALE": 1, "MISS": 0, "errors": 0, "p50_ms": 10.0, "p99_ms": 30.0,
        "staleness_p99_s": 1.5, "regenerations": 1,
    }  # fmt: skip
    assert series[1]["HIT"] + series[1]["STALE"] + series[1]["MISS"] + series[1]["errors"] == 0  # a quiet second
    assert (series[2]["MISS"], series[2]["errors"], series[2]["p99_ms"]) == (1, 1, 9.0)


def test_json_file_has_the_fields_spec_names(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json(summarize([Outcome(0.0, 1.0, "HIT", path="/")], 1.0, 1.0), path)
    data = orjson.loads(path.read_bytes())
    for key in ("requests", "achieved_rate", "duration_s", "states", "errors", "latency_ms", "staleness_s"):
        assert key in data
    assert set(data["states"]) == {"HIT", "STALE", "MISS"}
    assert set(data["latency_ms"]) == {"all", "HIT", "STALE", "MISS"}
    assert {"p50", "p90", "p99", "max"} <= set(data["latency_ms"]["all"])
    assert set(data["staleness_s"]) == {"p50", "p99", "max", "stale_share"}


def test_unwritable_report_files_are_one_error(tmp_path: Path) -> None:
    report = summarize([], 1.0)
    with pytest.raises(IsrError, match=r"^cannot write .*/missing/r.json: No such file or directory$"):
        write_json(report, tmp_path / "missing" / "r.json")
    with pytest.raises(IsrError, match=r"^cannot write .*/missing/r.json: no folder .*/missing$"):
        check_writable(tmp_path / "missing" / "r.json")
    with pytest.raises(IsrError, match=r"^cannot write .*: it is a folder$"):
        check_writable(tmp_path)
    check_writable(tmp_path / "new.json")  # a new file in a folder that exists is fine
    assert not (tmp_path / "new.json").exists()  # and the check does not create it
