"""An optional catch-all: /shop and /shop/a/b. PAGE-SOURCE-MARKER-8f3b"""

revalidate = 60


async def get_static_props(ctx):
    return {"props": {"has_path": "path" in ctx.params, "parts": list(ctx.params.get("path", []))}}
