"""SSR page: rendered per request from ctx.query/headers/cookies. FUNC-SOURCE-MARKER-3d7e"""
import os
import time

from pages._lib.probe import log


async def get_server_side_props(ctx):
    log("ssr")
    return {
        "props": {
            "query": ctx.query,
            "headers": dict(ctx.headers),
            "cookies": dict(ctx.cookies),
            "stamp": time.time_ns(),
            "dotenv": os.environ.get("FROM_DOTENV"),
            "override": os.environ.get("OVERRIDE_ME"),
        }
    }
