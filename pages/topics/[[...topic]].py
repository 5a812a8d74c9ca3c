"""Topics: an optional catch-all, /topics lists them all and /topics/a/b lists posts with both."""

from typing import Any

from pages._lib.content import generated_at, list_posts, list_topics

revalidate = 60
fallback = "blocking"
# The default template would be the sibling "[[...topic]].html"; any file under pages/ will do.
template = "topics/_topics.html"


def get_static_paths() -> list[str]:
    # Path strings work as well as param dicts; "/topics" is the bare path (no "topic" param).
    return ["/topics"] + [f"/topics/{t['topic']}" for t in list_topics()]


def get_static_props(ctx: Any) -> dict[str, Any]:
    chosen: list[str] = ctx.params.get("topic", [])  # absent for the bare /topics
    canonical = sorted(set(chosen))
    if chosen != canonical:
        # /topics/caching/basics and /topics/basics/caching are one page: send readers to one URL.
        destination = "/topics/" + "/".join(canonical)
        return {"redirect": {"destination": destination, "permanent": False}}
    posts = list_posts(topics=chosen) if chosen else []
    if chosen and not posts:
        return {"not_found": True}
    props = {
        "chosen": chosen,
        "topics": list_topics(),
        "posts": posts,
        # Topics that narrow this list down without emptying it: the "+ topic" links.
        "narrower": sorted({t for post in posts for t in post["topics"]} - set(chosen)),
        "generated_at": generated_at(),
    }
    return {"props": props, "tags": ["blog"]}
