"""`isr logs`: read a site's function logs, or follow a running server's live."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from rich.text import Text

from isr.cli.common import add_site, add_url, console
from isr.constants import TOKEN_VARIABLE
from isr.errors import IsrError
from isr.logs.record import Filter, LogRecord
from isr.logs.store import LogStore, log_folder
from isr.site.site import load_site

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RECONNECT_S = 1.0
_STATUS_STYLE = {"2": "green", "3": "cyan", "4": "yellow", "5": "bold red"}


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("logs", help="function logs: stored, or --follow a running server")
    add_site(parser)
    parser.add_argument("--function", metavar="FILE", help="only this function, e.g. pages/blog/[slug].py")
    parser.add_argument("--errors", action="store_true", help="only errors (status >= 500, failed regenerations)")
    parser.add_argument("--since", type=since_seconds, metavar="AGE", help="only records younger than AGE: 30s, 10m, 2h, 1d")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--follow", "-f", action="store_true", help="stream new records from the running server")
    add_url(parser)
    parser.add_argument("--token", default=os.environ.get(TOKEN_VARIABLE, ""), help=f"token for a server beyond loopback (default ${TOKEN_VARIABLE})")


def since_seconds(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age like 30s, 10m, 2h or 1d")
    return float(match[1]) * _UNITS[match[2]]


def run(args: argparse.Namespace) -> int:
    keep = Filter(function=args.function, errors=args.errors, since=time.time() - args.since if args.since else 0.0)
    if args.follow:
        try:
            asyncio.run(follow(args, keep))
        except KeyboardInterrupt:
            pass
        return 0
    site = load_site(args.site)
    folder = log_folder(site.root)
    if not folder.exists():
        raise IsrError(f"no logs yet for {site.root}: nothing has run there")
    store = LogStore(folder)
    try:
        for record in store.read(keep):
            show(record, args.json)
    finally:
        store.close()
    return 0


async def follow(args: argparse.Namespace, keep: Filter) -> None:
    """Stream records until Ctrl-C; reconnect when the server restarts."""
    params = {"follow": "1", **({"function": keep.function} if keep.function else {}), **({"errors": "1"} if keep.errors else {})}
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    url = args.url.rstrip("/") + "/_isr/logs"
    waiting_said = False
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)) as session:
        while True:
            try:
                async with session.get(url, params=params, headers=headers) as response:
                    if response.status == 401:
                        raise IsrError(f"{args.url} needs the revalidate token: pass --token or set {TOKEN_VARIABLE}")
                    if response.status != 200:
                        raise IsrError(f"{url} answered {response.status}")
                    waiting_said = False
                    async for line in response.content:
                        if line.startswith(b"data: "):
                            show(LogRecord.from_json(orjson.loads(line[6:])), args.json)
            except (aiohttp.ClientError, ConnectionError):
                if not waiting_said:
                    print(f"isr: waiting for {args.url} …", file=sys.stderr, flush=True)
                    waiting_said = True
            await asyncio.sleep(RECONNECT_S)


def show(record: LogRecord, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(record.as_json()).decode() + "\n")
        sys.stdout.flush()
        return
    stamp = datetime.fromtimestamp(record.time).strftime("%Y-%m-%d %H:%M:%S")
    line = Text()
    line.append(f"{stamp} ", "dim")
    line.append(f"{record.kind:<10} ")
    line.append(f"{record.status:>3} ", _STATUS_STYLE.get(str(record.status)[0], ""))
    line.append(f"{record.duration_ms:>9.1f} ms {record.memory_mb:>6.1f} MB ")
    line.append(f"{(record.cache or record.error or '-'):<28} ", "bold red" if record.error else "")
    line.append(f"{record.path}  {record.function}")
    if record.message:
        line.append(f"  {record.message}", "red")
    out = console()
    out.print(line, soft_wrap=True)
    for printed in record.lines:
        out.print(Text(f"    │ {printed}", "dim"), soft_wrap=True)
