"""SSR page (maxDuration 2) that misbehaves on request: ?mode=raise|spin|big|oom. FUNC-SOURCE-MARKER-3d7e"""
import os

from pages._lib.probe import log, mark


async def get_server_side_props(ctx):
    mode = ctx.query.get("mode", "ok")
    log(f"trouble:{mode}")
    if mode == "raise":
        raise RuntimeError("trouble page failed on purpose")  # FUNC-SOURCE-MARKER-3d7e
    if mode == "spin":
        mark("trouble-spin", str(os.getpid()))
        while True: pass  # FUNC-SOURCE-MARKER-3d7e
    if mode == "oom":
        hog = bytearray(2 * 1024**3)
        return {"props": {"size": len(hog)}}
    if mode == "big":
        return {"props": {"pad": "x" * 70_000}}
    return {"props": {"pid": os.getpid()}}
