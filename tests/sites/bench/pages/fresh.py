"""A page that goes stale every second: bench measures the staleness it is served with."""

import time

revalidate = 1


def get_static_props(ctx):
    return {"props": {"at": f"{time.time():.3f}"}}
