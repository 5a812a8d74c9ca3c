"""Server-side rendered on every request. PAGE-SOURCE-MARKER-8f3b"""
import time

from pages._lib.control import _log


def _header(headers, name):
    for key, value in dict(headers).items():
        if key.lower() == name:
            return value
    return None


async def get_server_side_props(ctx):
    _log("ssr")
    q = ctx.query.get("q")
    if isinstance(q, list):
        q = ",".join(q)
    return {
        "props": {
            "q": q,
            "flavor": ctx.cookies.get("flavor"),
            "xtest": _header(ctx.headers, "x-test"),
            "stamp": time.time_ns(),
        }
    }
