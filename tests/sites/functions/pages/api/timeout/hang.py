"""maxDuration 2: ?hang=1 awaits something that never comes; otherwise answers. FUNC-SOURCE-MARKER-3d7e"""
import asyncio
import os

from pages._lib.probe import log, mark


async def handler(request, response):
    if request.query.get("hang"):
        log("hang:start")
        mark("hang", str(os.getpid()))
        await asyncio.Event().wait()
    response.json({"hang": False, "pid": os.getpid()})
