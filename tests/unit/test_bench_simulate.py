"""The simulation's rules on a virtual clock (tests/sites/bench: /fresh revalidate 1, /static
revalidate False, /items/[id] revalidate 3600 fallback blocking), and its speed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from isr.bench.load import Workload
from isr.bench.simulate import Simulation, simulate
from isr.errors import IsrError
from isr.site.site import Site, load_site

SITE = Path(__file__).parents[1] / "sites" / "bench"
RENDER_MS = 100.0


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(SITE)


def test_first_request_misses_and_concurrent_ones_wait_on_the_same_render(site: Site) -> None:
    sim = Simulation(site, RENDER_MS)
    first, second = sim.request(0.0, "/items/x"), sim.request(0.04, "/items/x")
    assert (first.state, first.latency_ms) == ("MISS", pytest.approx(100.0))
    assert (second.state, second.latency_ms) == ("MISS", pytest.approx(60.0))  # the rest of the same render
    assert sim.renders["/items/x"] == 1
    assert sim.request(0.2, "/items/x?utm=1").state == "HIT"  # query ignored, as the cache does


def test_fresh_hit_then_stale_with_one_regeneration_that_ends_after_render_ms(site: Site) -> None:
    sim = Simulation(site, RENDER_MS)
    sim.request(0.0, "/fresh")  # generated at 0.1, stale from 1.1
    assert sim.request(1.0, "/fresh").state == "HIT"
    stale = [sim.request(t, "/fresh") for t in (1.15, 1.2, 1.24)]
    assert [o.state for o in stale] == ["STALE"] * 3
    assert stale[0].staleness_s == pytest.approx(0.05)
    assert sim.renders["/fresh"] == 2  # one regeneration for the three stale answers
    after = sim.request(1.26, "/fresh")  # the regeneration ended at 1.25
    assert (after.state, after.regenerated) == ("HIT", True)
    assert sim.request(2.24, "/fresh").state == "HIT" and sim.request(2.26, "/fresh").state == "STALE"


def test_revalidate_false_is_never_stale_and_what_if_overrides_isr_routes(site: Site) -> None:
    sim = Simulation(site, RENDER_MS, revalidate=5)
    sim.request(0.0, "/static")
    assert {sim.request(t, "/static").state for t in (1.0, 1e6, 1e9)} == {"HIT"}
    sim.request(0.0, "/fresh")  # revalidate 1 in the site, 5 in the what-if
    assert sim.request(4.0, "/fresh").state == "HIT" and sim.request(5.2, "/fresh").state == "STALE"


def test_not_a_page_is_an_error_or_no_state(site: Site) -> None:
    sim = Simulation(site, RENDER_MS)
    assert sim.request(0.0, "/nothing/here").error == "404"
    assert sim.request(0.0, "/fresh/").state == ""  # 308 to /fresh


def test_report_of_a_generated_workload(site: Site) -> None:
    report = simulate(Workload(paths=("/fresh", "/static"), zipf=0, rate=100, duration_s=10), site, RENDER_MS)
    assert report.requests == 1000 and report.workload["mode"] == "simulated"
    # Each path's first request renders it (MISS), and the ones in the next 100 ms wait for that render.
    assert 2 <= report.states["MISS"] <= 20 and report.states["STALE"] > 0
    assert 0 < report.staleness_s["max"] <= 1.0
    assert len(report.series) == 10 and report.regenerations >= 8


def test_a_million_requests_well_under_a_minute(site: Site) -> None:
    paths = ("/fresh", "/static", *(f"/items/{n}" for n in range(1000)))
    started = time.perf_counter()
    report = simulate(Workload(paths=paths, rate=20_000, duration_s=50), site, RENDER_MS)
    elapsed = time.perf_counter() - started
    print(f"simulated {report.requests:,} requests in {elapsed:.1f} s")
    assert report.requests == 1_000_000
    assert elapsed < 20, f"{elapsed:.1f} s for a million requests"


def test_closed_loop_cannot_be_simulated(site: Site) -> None:
    with pytest.raises(IsrError, match="--simulate needs a schedule"):
        simulate(Workload(paths=("/fresh",), rate=None), site, RENDER_MS)
