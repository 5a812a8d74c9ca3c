"""Blog posts: blocking fallback (the default), sync functions. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log

revalidate = 60


def get_static_paths():
    return [{"slug": "hello"}, "/blog/world", {"slug": "third"}, {"slug": "a b"}, {"slug": "café"}]


def get_static_props(ctx):
    slug = ctx.params["slug"]
    _log(f"blog:{slug}")
    return {"props": {"slug": slug, "value": f"post-{slug}"}, "tags": ["blog"]}
