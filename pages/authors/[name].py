"""An author page: ISR with fallback = False, so only the authors get_static_paths lists exist."""

from typing import Any

from pages._lib.content import generated_at, get_author, list_authors, list_posts

revalidate = 3600
fallback = False  # any other /authors/<name> is a 404 without running get_static_props


def get_static_paths() -> list[dict[str, str]]:
    return [{"name": author["slug"]} for author in list_authors()]


def get_static_props(ctx: Any) -> dict[str, Any]:
    name = ctx.params["name"]
    author = get_author(name)
    if author is None:
        # Listed by get_static_paths at build time but gone from the data since.
        return {"not_found": True}
    props = {"author": author, "posts": list_posts(author=name), "generated_at": generated_at()}
    return {"props": props, "tags": ["blog", f"author:{name}"]}
