"""The hit-path benchmark's baseline: fixed bytes served from memory by a bare aiohttp handler.

    python benchmarks/baseline_server.py BODY_FILE PORT [--host H] [--content-type T] [--kind K]

Every request, whatever its method or path, gets `web.Response(body=BODY)` with the
file's bytes read once at start. It runs on uvloop, like `isr serve`, in one process
with no access log. `--kind server` (the default) is the low-level `web.Server` that
research/hit-path.md measures as "the bare handler"; `--kind app` puts the same
handler behind a `web.Application` with one catch-all route, for comparison.

It prints one line `listening on http://H:P` when it accepts connections and exits
cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
from aiohttp import web

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def make_handler(body: bytes, content_type: str) -> Handler:
    """Return a handler that answers every request with `body`."""
    mime, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')

    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(body=body, content_type=mime.strip(), charset=charset)

    return handler


def make_runner(handler: Handler, kind: str) -> web.BaseRunner:
    if kind == "app":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        return web.AppRunner(app, access_log=None, handle_signals=False)
    return web.ServerRunner(web.Server(handler, access_log=None), handle_signals=False)


async def serve(body: bytes, host: str, port: int, content_type: str, kind: str) -> None:
    runner = make_runner(make_handler(body, content_type), kind)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # backlog well above the benchmark's 64 connections, as a production server would have.
        await web.TCPSite(runner, host, port, backlog=1024).start()
        print(f"listening on http://{host}:{port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("body_file", type=Path, help="file whose bytes every response carries")
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--content-type", default="text/html; charset=utf-8")
    parser.add_argument("--kind", choices=("server", "app"), default="server",
                        help="low-level web.Server (default) or web.Application with one route")
    args = parser.parse_args(argv)
    try:
        body = args.body_file.read_bytes()
    except OSError as exc:
        print(f"baseline_server: cannot read {args.body_file}: {exc.strerror}", file=sys.stderr)
        return 2
    uvloop.run(serve(body, args.host, args.port, args.content_type, args.kind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
