"""SSR page (plain def) that sets its own response headers. FUNC-SOURCE-MARKER-3d7e"""
from pages._lib.probe import log


def get_server_side_props(ctx):
    log("ssr_headers")
    return {
        "props": {"ok": True},
        "headers": {"Cache-Control": "public, max-age=30", "X-Page-Header": "from-page"},
    }
