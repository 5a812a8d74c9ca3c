"""An SSR page: never cached, so never revalidated."""


def get_server_side_props(ctx):
    return {"props": {}}
