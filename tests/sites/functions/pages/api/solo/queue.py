"""maxConcurrency 1: logs its start and end, waits while control "queue" holds. FUNC-SOURCE-MARKER-3d7e"""
import os

from pages._lib.probe import hold, log


async def handler(request, response):
    log(f"queue:start:{os.getpid()}")
    await hold("queue")
    log(f"queue:end:{os.getpid()}")
    response.json({"pid": os.getpid()})
