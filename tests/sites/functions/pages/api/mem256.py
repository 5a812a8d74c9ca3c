"""Configured with 256 MB; allocates ?mb= MB. FUNC-SOURCE-MARKER-3d7e"""
import os


async def handler(request, response):
    hog = bytearray(int(request.query.get("mb", "1")) * 1024**2)
    response.json({"allocated": len(hog), "pid": os.getpid()})
