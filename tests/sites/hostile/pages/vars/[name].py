"""Props named like the engine's template variables (path, params), and a not-found path."""
fallback = True
revalidate = False


def get_static_props(ctx):
    if ctx.params["name"] == "missing":
        return {"not_found": True}
    return {"props": {"path": ["a", "b"], "params": "own-params"}}
