"""An ISR page that redirects (temporary). PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log

revalidate = 60


async def get_static_props(ctx):
    _log("moved")
    return {"redirect": {"destination": "/about", "permanent": False}}
