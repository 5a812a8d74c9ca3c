"""fallback False: only the paths of get_static_paths exist. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log

revalidate = 60
fallback = False


def get_static_paths():
    return [{"id": "a"}, "/ff/b"]


def get_static_props(ctx):
    _log(f"ff:{ctx.params['id']}")
    return {"props": {"value": f"ff-{ctx.params['id']}"}}
