"""An ISR page whose data says it does not exist. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log

revalidate = 60


async def get_static_props(ctx):
    _log("gone")
    return {"not_found": True}
