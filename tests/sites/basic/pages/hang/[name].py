"""maxDuration 2 s (isr.json); steered like ctl/[name].py. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import steered_props

revalidate = 1
fallback = "blocking"
template = "ctl/[name].html"


async def get_static_props(ctx):
    return await steered_props("hang", ctx.params["name"])
