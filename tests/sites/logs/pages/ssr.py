"""SSR page: rendered on every request; prints the query's `tag`."""


def get_server_side_props(ctx):
    print(f"ssr-print:{ctx.query.get('tag', '-')}")
    return {"props": {"tag": ctx.query.get("tag", "-")}}
