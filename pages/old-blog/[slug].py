"""The old blog URLs: ISR that returns a redirect to /blog/<slug>, cached like a page."""

from typing import Any

from pages._lib.content import get_post

revalidate = 3600
fallback = "blocking"

# No template: every result is a redirect or a 404, so nothing is ever rendered.


def get_static_props(ctx: Any) -> dict[str, Any]:
    slug = ctx.params["slug"]
    post = get_post(slug)
    if post is None or post["draft"]:
        return {"not_found": True}
    # permanent=False answers 307. Use True (308) once the move is final: browsers
    # remember a permanent redirect, which is awkward while you are trying things out.
    return {"redirect": {"destination": f"/blog/{slug}", "permanent": False}}
