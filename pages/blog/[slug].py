"""A blog post: ISR, get_static_paths and fallback "blocking"; unknown slugs are a cached 404."""

from typing import Any

from pages._lib.content import generated_at, get_post

revalidate = 60
fallback = "blocking"  # paths not prerendered are rendered while their first request waits

# `isr build` prerenders these two; the third published post, on-demand-revalidation,
# is rendered by its first request instead (x-isr-cache: MISS).
PRERENDERED = ["hello-isr", "stale-while-revalidate"]


async def get_static_paths() -> list[dict[str, str]]:
    return [{"slug": slug} for slug in PRERENDERED]


async def get_static_props(ctx: Any) -> dict[str, Any]:
    slug = ctx.params["slug"]
    post = get_post(slug)
    if post is None or post["draft"]:
        # Cached like a page: the 404 is regenerated after `revalidate`, or on demand,
        # so publishing the draft and revalidating its path makes it appear.
        return {"not_found": True}
    props = {"post": post, "prerendered": slug in PRERENDERED, "generated_at": generated_at()}
    return {"props": props, "tags": ["blog", f"post:{slug}"]}
