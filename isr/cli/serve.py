"""`isr serve`: the production server, on the newest complete build of the site."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import uvloop

from isr.app import default_region, new_instance
from isr.cli.common import add_cache, add_site, with_cache_sizes
from isr.cli.supervisor import CANNOT_START, Supervisor
from isr.constants import INTERNAL_TOKEN_VARIABLE, REGION_VARIABLE
from isr.errors import IsrError
from isr.http.service import serve
from isr.runtime.limits import die_with_parent
from isr.site.builds import newest_complete, served_build
from isr.site.site import Site, live_root, load_site


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("serve", help="serve the site (production server)")
    add_site(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    parser.add_argument("--workers", type=_count, default=1, metavar="N", help="server processes sharing the port and the cache (default 1)")
    parser.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)  # one of --workers N
    parser.add_argument("--code", help=argparse.SUPPRESS)  # the snapshot the supervisor chose
    parser.add_argument("--instance", type=_label, metavar="NAME", help="this instance's name in logs and metrics (default: a short random id)")
    parser.add_argument("--region", type=_label, metavar="NAME", help=f"its region in logs and metrics (default: ${REGION_VARIABLE}, else local)")
    add_cache(parser)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="isr: %(levelname)s %(message)s")
    root = live_root(args.site)
    code = Path(args.code) if args.code else served_build(root).code
    site = load(root, args, code)  # a bad site is one error here, not one per server
    args.instance = args.instance or new_instance()  # --workers processes are one instance
    args.region = args.region or default_region()
    if args.workers > 1:
        return supervise(args, root, code)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the server's own handler is in place
    if args.supervised:
        die_with_parent()  # a kill -9 of the supervisor takes its servers along
    try:
        reload = functools.partial(load, root, args)
        uvloop.run(serve(site, args.host, args.port, args.cache, args.supervised, reload=reload, instance=args.instance, region=args.region))
    except IsrError as exc:
        if not args.supervised:
            raise
        print(f"isr: error: {exc}", file=sys.stderr, flush=True)
        return CANNOT_START  # the supervisor stops: its other servers would fail alike
    return 0


def load(root: Path, args: argparse.Namespace, code: Path) -> Site:
    """The site with its code from a snapshot, and the command line's cache sizes."""
    return with_cache_sizes(load_site(root, code), args)


def supervise(args: argparse.Namespace, root: Path, code: Path) -> int:
    """Run N servers on one port (SO_REUSEPORT: the kernel spreads connections) and one cache.

    They share one internal token, so a function's revalidate() is accepted by whichever
    server its request reaches. A server started again after a death runs the build the
    others run: the one chosen at start, or after the last SIGHUP.
    """
    base = [sys.executable, "-m", "isr", "serve", str(root), "--host", args.host, "--port", str(args.port), "--supervised"]
    base += ["--cache", args.cache] if args.cache else []
    base += ["--instance", args.instance, "--region", args.region]
    base += ["--cache-memory", str(args.cache_memory)] if args.cache_memory else []
    base += ["--cache-disk", str(args.cache_disk)] if args.cache_disk else []
    served = [code]

    def hangup() -> None:
        newest = newest_complete(root)
        served[0] = newest.code if newest else served[0]

    env = {**os.environ, INTERNAL_TOKEN_VARIABLE: secrets.token_urlsafe(24)}
    return Supervisor(lambda: [*base, "--code", str(served[0])], env, args.workers, hangup).run()


def _label(text: str) -> str:
    """An instance or region name: a label in metrics and log records."""
    if not text or len(text) > 64 or not all(c.isalnum() or c in "-_." for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a name of 1 to 64 letters, digits, '-', '_' or '.'")
    return text


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes from 1 to 64")
    return int(text)
