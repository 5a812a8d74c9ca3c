"""`isr routes`: every route, its kind and function configuration, without running anything."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from isr.cli.common import add_site, console, revalidate_text
from isr.site.site import load_site


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("routes", help="print the route table without rendering anything")
    add_site(parser)


def run(args: argparse.Namespace) -> int:
    site = load_site(args.site)
    table = Table(title=f"{site.root} · build {site.build_id}", title_justify="left")
    for column in ("route", "kind", "file", "revalidate", "fallback", "memory", "maxDuration", "bundle"):
        table.add_column(column)
    for route in site.routes.routes:
        cached = route.cached
        table.add_row(
            route.page,
            route.kind,
            route.file,
            revalidate_text(route.revalidate) if cached else "-",
            str(route.fallback) if cached and route.is_dynamic else "-",
            f"{route.function.memory} MB",
            f"{route.function.max_duration:g} s",
            route.function.bundle,
        )
    console().print(table)
    return 0
