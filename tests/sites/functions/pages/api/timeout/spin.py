"""maxDuration 2: ?spin=1 runs `while True: pass`; otherwise answers. FUNC-SOURCE-MARKER-3d7e"""
import asyncio
import os

from pages._lib.probe import log, mark


async def handler(request, response):
    if request.query.get("spin"):
        log("spin:start")
        mark("spin", str(os.getpid()))
        while True: pass  # FUNC-SOURCE-MARKER-3d7e
    if request.query.get("sleep"):
        await asyncio.sleep(float(request.query["sleep"]))
    response.json({"spin": False, "pid": os.getpid()})
