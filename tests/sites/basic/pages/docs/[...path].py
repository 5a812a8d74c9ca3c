"""A catch-all route that echoes its params. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log

revalidate = 60


async def get_static_paths():
    return [{"path": ["intro"]}, {"path": ["guide", "install"]}]


async def get_static_props(ctx):
    parts = ctx.params["path"]
    _log("docs:" + "/".join(parts))
    return {"props": {"parts": list(parts)}}
