"""`isr revalidate`: regenerate paths and mark tags stale on a running server."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from isr.cli.common import add_url
from isr.client import RevalidateError, post_revalidate
from isr.constants import TOKEN_VARIABLE

EXIT_FAILED = 1  # the server answered, and some path failed
EXIT_USAGE = 2  # bad arguments, unreachable server, or refused token


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("revalidate", help="regenerate paths now and mark tags stale on a running server")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="absolute paths, e.g. /blog/hello")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG", help="mark every cached path with this tag stale (repeatable)")
    add_url(parser)
    parser.add_argument("--token", default=os.environ.get(TOKEN_VARIABLE, ""), help=f"bearer token (default ${TOKEN_VARIABLE})")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the regenerations (default 300)")


def run(args: argparse.Namespace) -> int:
    if not args.paths and not args.tag:
        return _usage("give at least one PATH or --tag")
    bad = [p for p in args.paths if not p.startswith("/")]
    if bad:
        return _usage(f"paths must be absolute (start with /): {bad[0]}")
    started = time.perf_counter()
    try:
        status, report = asyncio.run(post_revalidate(args.url, args.token, args.paths, args.tag, args.timeout))
    except RevalidateError as exc:
        return _usage(str(exc))
    if status not in (200, 207):
        message = report.get("error", {}).get("message", "unexpected answer")
        return _usage(f"{args.url} answered {status}: {message}")
    return _print(report, args.tag, (time.perf_counter() - started) * 1000)


def _print(report: dict[str, Any], tags: list[str], elapsed_ms: float) -> int:
    for path in report.get("revalidated", []):
        print(f"revalidated {path} in {elapsed_ms:.0f} ms")
    for path in report.get("stale", []):
        print(f"stale {path}")
    if tags and not report.get("stale"):
        print(f"stale: no cached path carries {', '.join(tags)}")
    for error in report.get("errors", []):
        print(f"error {error['path']} {error['code']} {error['message']}")
    return EXIT_FAILED if report.get("errors") else 0


def _usage(message: str) -> int:
    print(f"isr: error: {message}", file=sys.stderr)
    return EXIT_USAGE
