"""fallback: False; only /only/a exists."""

fallback = False


def get_static_paths():
    return [{"id": "a"}]


def get_static_props(ctx):
    return {"props": {"id": ctx.params["id"]}}
