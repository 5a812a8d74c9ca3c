"""Home page: ISR, served from the cache and regenerated in the background every 60 seconds."""

from typing import Any

from pages._lib.content import generated_at, list_posts

revalidate = 60  # seconds a generation stays fresh (HIT); after that it is served STALE once


def get_static_props(ctx: Any) -> dict[str, Any]:
    return {
        "props": {"posts": list_posts()[:3], "generated_at": generated_at()},
        # Lists posts, so `isr revalidate --tag blog` marks it stale along with the blog.
        "tags": ["blog"],
    }
