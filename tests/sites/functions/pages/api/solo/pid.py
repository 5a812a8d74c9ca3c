"""maxConcurrency 1 (same bundle as solo/queue.py): reports its worker's pid. FUNC-SOURCE-MARKER-3d7e"""
import os


async def handler(request, response):
    response.json({"pid": os.getpid()})
