"""Arguments and output shared by the sub-commands."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import yarl
from rich.console import Console

from isr.constants import DEFAULT_URL, URL_VARIABLE
from isr.site.config import parse_size
from isr.site.site import Site


def add_site(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", nargs="?", default=".", metavar="SITE", help="the site folder (default: the current folder)")


def add_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache", metavar="DIR|URL",
        help="cache folder (default: SITE/cache), or a shared Redis: redis://[:password@]host:6379/0, rediss://…, "
        "unix:///path/redis.sock, any node of a Redis Cluster (found by itself); options ?timeout=0.5 (s per call), ?prefix=isr (of keys)",
    )
    parser.add_argument("--cache-memory", type=_size, metavar="SIZE", help="memory for cached pages, e.g. 256mb (default: isr.json cache.memory, else 256mb)")
    parser.add_argument("--cache-disk", type=_size, metavar="SIZE", help="disk cache bound, e.g. 4gb (default: isr.json cache.disk, else 4gb)")


def with_cache_sizes(site: Site, args: argparse.Namespace) -> Site:
    """The site with --cache-memory / --cache-disk over its isr.json sizes."""
    sizes = {"cache_memory": args.cache_memory, "cache_disk": args.cache_disk}
    overrides = {key: value for key, value in sizes.items() if value is not None}
    return dataclasses.replace(site, config=dataclasses.replace(site.config, **overrides)) if overrides else site


def _size(text: str) -> int:
    size = parse_size(text)
    if size is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 256mb, 512kb or 4gb")
    return size


def add_url(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get(URL_VARIABLE, DEFAULT_URL)
    parser.add_argument("--url", type=server_url, default=default, help=f"the running server (default ${URL_VARIABLE} or {DEFAULT_URL})")


def server_url(text: str) -> str:
    """An http(s) URL of a server, checked here so a typo is an error, not a silent retry."""
    url = yarl.URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError(f"{text!r} is not a server URL like http://127.0.0.1:3000")
    return text


def console() -> Console:
    """Rich output on a terminal; plain, wide lines when piped (tests, CI logs)."""
    if sys.stdout.isatty():
        return Console(markup=False, highlight=False)
    return Console(width=200, no_color=True, markup=False, highlight=False)


def revalidate_text(value: object) -> str:
    return "never" if value is False else f"{value} s"
