"""Default bundle (4 workers): logs its start with its pid, waits while control "pool" holds. FUNC-SOURCE-MARKER-3d7e"""
import os

from pages._lib.probe import hold, log


async def handler(request, response):
    log(f"pool:start:{os.getpid()}")
    await hold("pool")
    response.json({"pid": os.getpid()})
