"""Prints two lines (stdout, then stderr); ?sleep=<ms> waits first."""

import asyncio
import sys


async def handler(request, response):
    print(f"hello-line-1:{request.query.get('tag', '-')}")
    print("hello-line-2", file=sys.stderr)
    sleep_ms = int(request.query.get("sleep", "0"))
    if sleep_ms:
        await asyncio.sleep(sleep_ms / 1000)
    response.status(200).json({"hello": True})
