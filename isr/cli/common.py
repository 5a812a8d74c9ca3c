"""Arguments and output shared by the sub-commands."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console


def add_site(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", nargs="?", default=".", metavar="SITE", help="the site folder (default: the current folder)")


def add_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", metavar="DIR", help="cache folder (default: SITE/cache)")


def console() -> Console:
    """Rich output on a terminal; plain, wide lines when piped (tests, CI logs)."""
    if sys.stdout.isatty():
        return Console(markup=False, highlight=False)
    return Console(width=200, no_color=True, markup=False, highlight=False)


def revalidate_text(value: object) -> str:
    return "never" if value is False else f"{value} s"
