"""`isr serve`: the production server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

import uvloop
from aiohttp import web

from isr.app import open_engine, revalidate_token
from isr.cli.common import add_cache, add_site, with_cache_sizes
from isr.constants import INTERNAL_TOKEN_VARIABLE, URL_VARIABLE
from isr.errors import IsrError
from isr.http.admin import Admin
from isr.http.revalidate import RevalidateEndpoint
from isr.http.server import Handler
from isr.runtime.limits import die_with_parent
from isr.site.site import Site, load_site

FOLLOW_INTERVAL_S = 0.5  # how often to look for generations other processes stored


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("serve", help="serve the site (production server)")
    add_site(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    parser.add_argument("--workers", type=_count, default=1, metavar="N", help="server processes sharing the port and the cache (default 1)")
    parser.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)  # one of --workers N
    add_cache(parser)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="isr: %(levelname)s %(message)s")
    site = with_cache_sizes(load_site(args.site), args)
    if args.workers > 1:
        return supervise(args)
    if args.supervised:
        die_with_parent()  # a kill -9 of the supervisor takes its servers along
    uvloop.run(serve(site, args.host, args.port, args.cache, reuse_port=args.supervised))
    return 0


def supervise(args: argparse.Namespace) -> int:
    """Run N servers on one port (SO_REUSEPORT: the kernel spreads connections) and one cache.

    They share one internal token, so a function's revalidate() is accepted by whichever
    server its request reaches. The first to exit stops the others.
    """
    command = [sys.executable, "-m", "isr", "serve", str(args.site), "--host", args.host, "--port", str(args.port), "--supervised"]
    command += ["--cache", args.cache] if args.cache else []
    command += ["--cache-memory", str(args.cache_memory)] if args.cache_memory else []
    command += ["--cache-disk", str(args.cache_disk)] if args.cache_disk else []
    env = {**os.environ, INTERNAL_TOKEN_VARIABLE: secrets.token_urlsafe(24)}
    servers = [subprocess.Popen(command, env=env) for _ in range(args.workers)]

    def forward(signum: int, _: object) -> None:
        for server in servers:
            if server.poll() is None:
                server.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    code = _first_exit(servers)
    for server in servers:
        if server.poll() is None:
            server.terminate()
    for server in servers:
        server.wait()
    return code


def _first_exit(servers: list[subprocess.Popen[bytes]]) -> int:
    while True:
        for server in servers:
            if (code := server.poll()) is not None:
                return code
        time.sleep(0.1)


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes from 1 to 64")
    return int(text)


async def serve(site: Site, host: str, port: int, cache: str | None, reuse_port: bool = False, dev: bool = False) -> None:
    internal = os.environ.get(INTERNAL_TOKEN_VARIABLE) or secrets.token_urlsafe(24)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    engine = open_engine(site, cache, {URL_VARIABLE: url, INTERNAL_TOKEN_VARIABLE: internal}, dev=dev)
    token = revalidate_token(site)
    endpoint = RevalidateEndpoint(engine, [token, internal])
    admin = Admin(engine, engine.hub, token)
    server = web.Server(Handler(engine, endpoint, admin), access_log=None)
    loop = asyncio.get_running_loop()
    try:
        listener = await loop.create_server(server, host, port, reuse_address=True, reuse_port=reuse_port, backlog=1024)
    except OSError as exc:
        await engine.close()
        raise IsrError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine.invoker.prewarm()
    background = [asyncio.create_task(engine.store.follow(FOLLOW_INTERVAL_S)), asyncio.create_task(engine.hub.run())]
    mode = "development server for" if dev else "serving"
    print(f"isr: {mode} {site.root} (build {site.build_id}) on http://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        engine.hub.end_streams()
        listener.close()
        await server.shutdown(timeout=5)
        await engine.close()
