"""A page the tests steer through $ISR_CONTROL_DIR/<name>.json. PAGE-SOURCE-MARKER-8f3b

Control keys: value (default: unique per render), revalidate, sleep (s), hold (bool),
fail (bool), pad (number of filler characters).
"""
import time

from pages._lib.control import _log, _obey

revalidate = 1
fallback = "blocking"


async def get_static_props(ctx):
    name = ctx.params["name"]
    _log(f"ctl:{name}")
    control = await _obey(name)
    value = control.get("value") or f"{name}-{time.time_ns()}"
    props = {"name": name, "value": value}
    if control.get("pad"):
        props["pad"] = (value + "-") * (int(control["pad"]) // (len(value) + 1) + 1)
    result = {"props": props}
    if control.get("revalidate") is not None:
        result["revalidate"] = control["revalidate"]
    return result
