"""A page the tests steer through $ISR_CONTROL_DIR/<name>.json. PAGE-SOURCE-MARKER-8f3b

Control keys: value (default: unique per render), revalidate, sleep (s), hold (bool),
fail (bool), pad (number of filler characters).
"""
from pages._lib.control import steered_props

revalidate = 1
fallback = "blocking"


async def get_static_props(ctx):
    return await steered_props("ctl", ctx.params["name"])
