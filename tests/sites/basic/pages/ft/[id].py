"""fallback True: unknown paths get the fallback page at once. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log, _obey

revalidate = 60
fallback = True


async def get_static_paths():
    return []


async def get_static_props(ctx):
    ident = ctx.params["id"]
    _log(f"ft:{ident}")
    control = await _obey(f"ft-{ident}")
    return {"props": {"value": control.get("value") or f"ft-{ident}"}}
