"""`isr build`: prerender every static path into the cache and print the route table."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from typing import Any

from rich.progress import Progress
from rich.table import Table

from isr.app import open_engine
from isr.cli.common import add_cache, add_site, console, revalidate_text, with_cache_sizes
from isr.engine.engine import Engine
from isr.engine.prerender import Rendered
from isr.engine.prerender import prerender as prerender_paths
from isr.errors import FunctionError
from isr.site.builds import mark_complete, prune, read_build, snapshot, to_keep
from isr.site.routes import Route
from isr.site.site import Site, live_root, load_site

PARALLEL = 8  # prerenders in flight: every worker of a default bundle busy, and the next one queued


@dataclass
class RouteReport:
    route: Route
    paths: list[str] = field(default_factory=list)
    rendered: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("build", help="prerender the static paths and print the route table")
    add_site(parser)
    add_cache(parser)


def run(args: argparse.Namespace) -> int:
    root = live_root(args.site)
    site = with_cache_sizes(load_site(root, snapshot(root).code), args)  # renders what it snapshots
    reports = asyncio.run(build(site, args.cache))
    print_table(site, reports)
    errors = [e for r in reports for e in r.errors]
    for error in errors:
        console().print(f"error: {error}", markup=False, highlight=False)
    return 1 if errors else 0


async def build(site: Site, cache: str | None) -> list[RouteReport]:
    engine = open_engine(site, cache)
    try:
        reports = [RouteReport(r) for r in site.routes.routes]
        for report in reports:
            await collect_paths(engine, report)
        await prerender(engine, reports)
        if not any(report.errors for report in reports):
            await complete(engine, site)
        return reports
    finally:
        await engine.close()


async def complete(engine: Engine, site: Site) -> None:
    """Mark the build complete (what `isr serve` runs next), then drop the records and
    snapshots of builds other than the newest two complete ones and those in use."""
    mark_complete(read_build(site.code))
    backend = engine.store.backend
    keep = to_keep(site.root, await backend.builds_in_use())
    await backend.drop_builds(keep)
    prune(site.root, keep)


async def collect_paths(engine: Engine, report: RouteReport) -> None:
    if not report.route.cached:
        return
    try:
        report.paths = sorted(await engine.static_paths(report.route, fresh=True))
    except FunctionError as exc:
        report.errors.append(f"{report.route.file}: get_static_paths: {exc.code}: {exc}")


async def prerender(engine: Engine, reports: list[RouteReport]) -> None:
    by_page = {report.route.page: report for report in reports}
    with Progress(console=console(), transient=True) as progress:
        bar = progress.add_task("prerendering", total=sum(len(report.paths) for report in reports))

        def done(route: Route, path: str, outcome: Rendered | FunctionError) -> None:
            report = by_page[route.page]
            if isinstance(outcome, FunctionError):
                report.errors.append(f"{path}: {outcome.code}: {outcome}")
            else:
                report.rendered += 1
                report.bytes += outcome.size
                report.seconds += outcome.seconds
            progress.advance(bar)

        jobs = ((report.route, path) for report in reports for path in report.paths)
        await prerender_paths(engine, jobs, PARALLEL, done)


def print_table(site: Site, reports: list[RouteReport]) -> None:
    table = Table(title=f"build {site.build_id} · {site.root}", title_justify="left")
    for column in ("route", "kind", "revalidate", "fallback", "prerendered", "size", "time"):
        table.add_column(column, justify="right" if column in ("prerendered", "size", "time") else "left")
    for report in reports:
        route = report.route
        cached = route.cached
        table.add_row(
            route.page,
            route.kind,
            revalidate_text(route.revalidate) if cached else "-",
            str(route.fallback) if cached and route.is_dynamic else "-",
            str(report.rendered) if cached else "-",
            _size(report.bytes) if cached else "-",
            f"{report.seconds * 1000:.0f} ms" if cached else "-",
        )
    console().print(table)


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} kB"
