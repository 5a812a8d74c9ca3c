"""An SSR page that sets its own Cache-Control. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log


def get_server_side_props(ctx):
    _log("ssr_headers")
    return {"props": {"value": "ssr-headers"}, "headers": {"Cache-Control": "public, max-age=7"}}
