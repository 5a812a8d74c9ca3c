"""`isr serve`: the production server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
from typing import Any

import uvloop
from aiohttp import web

from isr.app import open_engine, revalidate_token
from isr.cli.common import add_cache, add_site
from isr.constants import INTERNAL_TOKEN_VARIABLE, URL_VARIABLE
from isr.errors import IsrError
from isr.http.admin import LOOPBACK, Admin
from isr.http.revalidate import RevalidateEndpoint
from isr.http.server import Handler
from isr.site.site import Site, load_site

FOLLOW_INTERVAL_S = 0.5  # how often to look for generations other processes stored


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("serve", help="serve the site (production server)")
    add_site(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    add_cache(parser)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="isr: %(levelname)s %(message)s")
    site = load_site(args.site)
    uvloop.run(serve(site, args.host, args.port, args.cache))
    return 0


async def serve(site: Site, host: str, port: int, cache: str | None) -> None:
    internal = secrets.token_urlsafe(24)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    engine = open_engine(site, cache, {URL_VARIABLE: url, INTERNAL_TOKEN_VARIABLE: internal})
    token = revalidate_token(site)
    endpoint = RevalidateEndpoint(engine, [token, internal])
    admin = Admin(engine, engine.hub, token, loopback_only=host in LOOPBACK)
    server = web.Server(Handler(engine, endpoint, admin), access_log=None)
    loop = asyncio.get_running_loop()
    try:
        listener = await loop.create_server(server, host, port, reuse_address=True, backlog=1024)
    except OSError as exc:
        await engine.close()
        raise IsrError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine.invoker.prewarm()
    background = [asyncio.create_task(engine.store.follow(FOLLOW_INTERVAL_S)), asyncio.create_task(engine.hub.run())]
    print(f"isr: serving {site.root} (build {site.build_id}) on http://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        engine.hub.end_streams()
        listener.close()
        await server.shutdown(timeout=5)
        await engine.close()
