"""A page that never goes stale: every request after the first is a HIT."""

revalidate = False


def get_static_props(ctx):
    return {"props": {}}
