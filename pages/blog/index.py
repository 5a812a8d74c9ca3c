"""Blog index: ISR listing every published post, tagged "blog" for on-demand revalidation."""

from typing import Any

from pages._lib.content import generated_at, list_posts, list_topics

revalidate = 60


def get_static_props(ctx: Any) -> dict[str, Any]:
    props = {"posts": list_posts(), "topics": list_topics(), "generated_at": generated_at()}
    return {"props": props, "tags": ["blog"]}
