"""The simulation agrees with a real run: the same short trace, replayed through the load core
against `isr serve` on tests/sites/bench and simulated, gives HIT/STALE/MISS shares within a
few points of each other."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from e2e_support import Server, Site

from isr.bench import load
from isr.bench.load import Target, Workload
from isr.bench.report import STATES, Report
from isr.bench.simulate import simulate
from isr.site.site import load_site

POINTS = 0.03  # the largest difference of a state's share allowed
RENDER_MS = 5.0  # about what a render of this site takes on this machine, worker round trip included


@pytest.fixture
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server(Site.copy("bench", tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.show_output_if_failed(request)


def trace() -> tuple[tuple[float, str], ...]:
    """6 s at 100 requests/s: /fresh (revalidate 1) goes stale every second, /static never,
    /items/a is rendered once, and a new item every half second is a MISS."""
    rng = random.Random(7)
    arrivals = []
    for n in range(600):
        t = n / 100
        pick = rng.random()
        path = (
            "/fresh"
            if pick < 0.5
            else "/static"
            if pick < 0.7
            else "/items/a"
            if pick < 0.9
            else f"/items/new{int(t * 2)}"
        )
        arrivals.append((t, path))
    return tuple(arrivals)


def shares(report: Report) -> dict[str, float]:
    served = sum(report.states.values())
    return {state: report.states[state] / served for state in STATES}


def test_simulated_shares_agree_with_a_real_run(live: Server) -> None:
    workload = Workload(trace=trace(), duration_s=6.0)
    real = uvloop.run(load.run(workload, Target(live.url, connections=16)))
    simulated = simulate(workload, load_site(live.site.root), RENDER_MS)
    assert real.errors == 0, real.errors_by
    assert real.requests == simulated.requests == 600
    got, want = shares(simulated), shares(real)
    print(f"real {want}\nsimulated {got}")
    for state in STATES:
        assert abs(got[state] - want[state]) <= POINTS, f"{state}: simulated {got[state]:.1%}, real {want[state]:.1%}"
    assert simulated.states["STALE"] > 0 and simulated.states["MISS"] > 0  # the test can tell the rules apart
