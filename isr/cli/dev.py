"""`isr dev`: the development server: every request renders, errors show in the browser,
and the server restarts when the site's code or templates change. It runs the live
code, never a build's snapshot."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import uvloop
import watchfiles

from isr.cli.common import add_site
from isr.errors import IsrError
from isr.http.service import serve
from isr.site.site import code_files, load_site

DEV_CACHE = ".isr/dev-cache"  # dev renders never mix with the production cache


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("dev", help="development server: renders every request, reloads on change")
    add_site(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")


def run(args: argparse.Namespace) -> int:
    root = load_site(args.site).root  # a bad site folder is an error now, not a reload loop
    print(f"isr: watching {root} for changes", flush=True)
    watchfiles.run_process(
        root, target=_serve, args=(str(root), args.host, args.port), watch_filter=_CodeChanges(root),
        callback=lambda changes: print(f"isr: {len(changes)} file(s) changed, restarting", flush=True),
    )
    return 0


def _serve(root: str, host: str, port: int) -> None:
    """One run of the server; a site that does not load waits for the next change."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="isr: %(levelname)s %(message)s")
    try:
        site = load_site(root)
        uvloop.run(serve(site, host, port, str(site.root / DEV_CACHE), dev=True))
    except IsrError as exc:
        print(f"isr: error: {exc} (waiting for a change)", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass


class _CodeChanges(watchfiles.DefaultFilter):
    """What makes a new build: the files the build id hashes (not data, cache or logs)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return super().__call__(change, path) and _is_code(self.root, Path(path))


def _is_code(root: Path, path: Path) -> bool:
    return (root / "pages") in path.parents or path == root / "isr.json" or path in set(code_files(root))
