"""An ISR page that redirects (permanent). PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log

revalidate = 60


def get_static_props(ctx):
    _log("moved_perm")
    return {"redirect": {"destination": "/about", "permanent": True}}
