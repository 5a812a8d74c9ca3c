"""Home page: ISR, revalidate 60, async. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _control, _log

revalidate = 60


async def get_static_props(ctx):
    _log("index")
    return {"props": {"title": "Home page", "value": _control("index").get("value", "home-1")}}
