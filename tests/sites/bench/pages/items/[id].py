"""Prerendered items a and b; any other id renders on demand (fallback blocking)."""

import time

revalidate = 3600
fallback = "blocking"


def get_static_paths():
    return [{"id": "a"}, {"id": "b"}]


def get_static_props(ctx):
    return {"props": {"id": ctx.params["id"], "at": f"{time.time():.3f}"}, "tags": ["items"]}
