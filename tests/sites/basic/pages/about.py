"""About page: ISR with revalidate False, plain def. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _control, _log

revalidate = False


def get_static_props(ctx):
    _log("about")
    return {"props": {"value": _control("about").get("value", "about-1")}}
