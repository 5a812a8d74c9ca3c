"""ISR page whose get_static_paths prints a line (`isr build` logs it as a `paths` record)."""

revalidate = 60


def get_static_paths():
    print("paths-print:posts")
    return [{"id": "one"}, "/posts/two"]


def get_static_props(ctx):
    print(f"post-print:{ctx.params['id']}")
    return {"props": {"id": ctx.params["id"]}}
