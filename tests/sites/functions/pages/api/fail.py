"""Failure modes, by ?mode=: raise, noresponse, big (?n= bytes), oom (?mb=), ok. FUNC-SOURCE-MARKER-3d7e"""
import os

from pages._lib.probe import log


async def handler(request, response):
    mode = request.query.get("mode", "ok")
    log(f"fail:{mode}")
    if mode == "raise":
        raise RuntimeError("api failed on purpose")  # FUNC-SOURCE-MARKER-3d7e
    if mode == "noresponse":
        response.status(201).set_header("X-Started", "yes")  # ... and never sends
        return
    if mode == "big":
        response.send("x" * int(request.query["n"]))
        return
    if mode == "oom":
        hog = bytearray(int(request.query["mb"]) * 1024**2)
        response.json({"allocated": len(hog)})
        return
    response.json({"ok": True, "pid": os.getpid()})
