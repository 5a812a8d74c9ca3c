"""get_static_props returns a revalidate that overrides the module's. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log

revalidate = 60


async def get_static_props(ctx):
    _log("override")
    return {"props": {"value": "override-1"}, "revalidate": 30}
