"""An SSR page that sets framing and hop-by-hop headers beside one of its own."""


def get_server_side_props(ctx):
    return {
        "props": {},
        "headers": {"content-length": "1000", "Transfer-Encoding": "chunked", "CONNECTION": "close", "X-Kept": "yes"},
    }
