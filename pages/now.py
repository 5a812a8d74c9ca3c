"""The "now" page: SSR with get_server_side_props, rendered on every request and never cached."""

from datetime import UTC, datetime
from typing import Any

# The request headers worth showing; the rest (and any credentials) stay off the page.
SHOWN_HEADERS = ["user-agent", "accept-language", "accept-encoding", "referer"]


def get_server_side_props(ctx: Any) -> dict[str, Any]:
    visits = _int(ctx.cookies.get("visits")) + 1
    name = ctx.query.get("name", "")
    if isinstance(name, list):  # ?name=a&name=b gives a list
        name = name[-1]
    props = {
        "now": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC",
        "name": name[:40],
        "query": ctx.query,
        "headers": {key: ctx.headers[key] for key in SHOWN_HEADERS if key in ctx.headers},
        "cookies": ctx.cookies,
        "visits": visits,
    }
    # An SSR page may add response headers: here a cookie counting this browser's visits.
    cookie = f"visits={visits}; Path=/now; Max-Age=86400; SameSite=Lax; HttpOnly"
    return {"props": props, "headers": {"Set-Cookie": cookie}}


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
