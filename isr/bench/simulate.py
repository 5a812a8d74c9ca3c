"""`isr bench --simulate`: the workload through the site's own freshness rules on a virtual clock.

No server and no renders: every render is assumed to take `render_ms`. The rules are the
engine's: a generation goes stale at `freshness.stale_at` of its end and revalidate (the
route's, as the server's records get it), is served HIT or STALE by `freshness.state_of`, a
STALE answer starts one background regeneration that later requests share, a path with no
generation is a MISS that waits for one render (concurrent requests wait for the same one),
and a `fallback: true` route answers its fallback page at once while the path renders.
The cache starts empty, as the fresh cache of the server `isr bench SITE` starts.

A path changes only when it is requested, so the end of its render is applied at its next
request: one plain loop, no event queue, a million requests in seconds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from isr.bench.load import Workload, arrivals
from isr.bench.report import Outcome, Report, summarize
from isr.constants import MISS, STALE
from isr.engine.freshness import stale_at, state_of
from isr.errors import BadPath, IsrError
from isr.http.static import PublicFiles
from isr.site.paths import split_path
from isr.site.routes import Route
from isr.site.site import Site

NEVER = float("-inf")


@dataclass(slots=True)
class _Path:
    """What the cache holds of one path, as far as freshness goes."""

    route: Route | None  # None: not a page (a public file, a redirect, a 404)
    revalidate: float | bool
    error: str = ""  # the answer's error key when route is None ("404", "400")
    stale_at: float = NEVER
    generation: int = 0  # 0: none yet
    render_until: float = NEVER  # when the render running for it ends (virtual seconds)
    seen: int = 0  # the generation the load last saw of it, as the load core tracks x-isr-generation


class Simulation:
    """The cache of one site on a virtual clock; `request` answers one arrival."""

    def __init__(self, site: Site, render_ms: float, revalidate: float | None = None) -> None:
        self.site = site
        self.render_s = render_ms / 1000
        self.revalidate = revalidate  # what-if: overrides the revalidate of every ISR route with one
        self.public = PublicFiles(site.public)
        self.paths: dict[str, _Path] = {}
        self.fallbacks: dict[str, float] = {}  # route page -> when its fallback page is ready
        self.renders: Counter[str] = Counter()  # path -> renders

    def request(self, t: float, raw: str) -> Outcome:
        """The answer at virtual time t to a GET of `raw` (query ignored, as the cache does)."""
        key = raw.partition("?")[0]
        entry = self.paths.get(key)
        if entry is None:
            entry = self.paths[key] = self._entry(key)
        route = entry.route
        if route is None:
            return Outcome(t, 0.0, "", entry.error, path=raw)
        if not route.cached:  # SSR or API: every request renders, no x-isr-cache
            self.renders[key] += 1
            return Outcome(t, self.render_s * 1000, path=raw)
        if entry.render_until <= t and entry.render_until != NEVER:  # its render ended meanwhile
            entry.generation += 1
            entry.stale_at = stale_at(entry.render_until, entry.revalidate)
            entry.render_until = NEVER
        if entry.generation == 0:
            return self._miss(t, raw, entry, route)
        state = state_of(entry, t)
        staleness = 0.0
        if state == STALE:
            staleness = t - entry.stale_at
            if entry.render_until == NEVER:  # one regeneration at a time per path
                self._render(t, key, entry)
        regenerated = entry.seen != 0 and entry.seen != entry.generation
        entry.seen = entry.generation
        return Outcome(t, 0.0, state, "", staleness, regenerated, raw)

    def _miss(self, t: float, raw: str, entry: _Path, route: Route) -> Outcome:
        if entry.render_until == NEVER:
            self._render(t, raw.partition("?")[0], entry)
        if route.is_dynamic and route.fallback is True:  # the fallback page now, rendered once per route
            ready = self.fallbacks.setdefault(route.page, t + self.render_s)
            return Outcome(t, max(ready - t, 0.0) * 1000, MISS, path=raw)
        entry.seen = entry.generation + 1  # the one being rendered, which it waits for
        return Outcome(t, (entry.render_until - t) * 1000, MISS, path=raw)

    def _render(self, t: float, key: str, entry: _Path) -> None:
        entry.render_until = t + self.render_s
        self.renders[key] += 1

    def _entry(self, key: str) -> _Path:
        """How the server would route this path: as it does, in the same order."""
        if len(key) > 1 and key.endswith("/"):
            return _Path(None, False)  # 308 to the path without the slash
        try:
            segments = split_path(key)
        except BadPath:
            return _Path(None, False, "400")
        if self.public.find(segments):
            return _Path(None, False)
        match = self.site.routes.match(segments)
        if match is None:
            return _Path(None, False, "404")
        route = match[0]
        what_if = self.revalidate
        if what_if is None or route.kind != "ISR" or route.revalidate is False:  # on-demand only stays so
            return _Path(route, route.revalidate)
        return _Path(route, what_if)


def simulate(workload: Workload, site: Site, render_ms: float, revalidate: float | None = None) -> Report:
    """The report a real run of `workload` against a fresh server of `site` would give, by
    the cache's rules alone: states, staleness, regenerations, renders per path."""
    if workload.rate is None and not workload.trace:
        raise IsrError("--simulate needs a schedule: --rate R or --trace FILE, not a closed loop (--connections alone)")
    sim = Simulation(site, render_ms, revalidate)
    outcomes = [sim.request(t, path) for t, path in arrivals(workload)]
    report = summarize(outcomes, measured_s(workload), workload.rate if not workload.trace else None)
    renders = sim.renders.total()
    report.warnings = ["simulated: latency is not measured (0 ms for HIT and STALE, --render-ms for MISS)"]
    cached = sum(1 for entry in sim.paths.values() if entry.route is not None and entry.route.cached)
    report.workload = {
        "mode": "simulated", "render_ms": render_ms, "revalidate": revalidate, "paths": len(sim.paths),
        "zipf": workload.zipf, "trace": bool(workload.trace), "speed": workload.speed, "warmup_s": workload.warmup_s,
        "renders": renders, "renders_per_path": round(renders / cached, 3) if cached else 0.0,
        "most_rendered": dict(sim.renders.most_common(10)),
    }  # fmt: skip
    return report


def measured_s(workload: Workload) -> float:
    """The measured seconds of the workload: its duration, or a shorter trace's length."""
    if workload.trace:
        return (
            min(workload.duration_s, workload.trace[-1][0] / workload.speed - workload.warmup_s) or workload.duration_s
        )
    return workload.duration_s
