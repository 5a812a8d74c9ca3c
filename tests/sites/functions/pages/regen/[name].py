"""ISR page, revalidate 1, steered by $ISR_CONTROL_DIR/regen-<name>.json {"mode": ...}.

Modes: ok (default), raise, spin (pure-Python infinite loop), sleep (awaits forever),
oom (allocates 2 GiB). FUNC-SOURCE-MARKER-3d7e
"""
import asyncio
import os
import time

from pages._lib.probe import control, log, mark

revalidate = 1


async def get_static_props(ctx):
    name = ctx.params["name"]
    mode = control(f"regen-{name}").get("mode", "ok")
    log(f"regen:{name}:{mode}")
    if mode == "raise":
        raise RuntimeError(f"regeneration of {name} failed on purpose")  # FUNC-SOURCE-MARKER-3d7e
    if mode == "spin":
        mark(f"regen-{name}", str(os.getpid()))
        while True: pass  # FUNC-SOURCE-MARKER-3d7e
    if mode == "sleep":
        await asyncio.sleep(3600)
    if mode == "oom":
        hog = bytearray(2 * 1024**3)
        return {"props": {"name": name, "value": str(len(hog))}}
    return {"props": {"name": name, "value": f"{name}-{time.time_ns()}"}}
