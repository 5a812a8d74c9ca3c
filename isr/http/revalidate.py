"""POST /_isr/revalidate: who may call it and what a valid body is."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import orjson
from aiohttp import web

from isr.engine.engine import Engine
from isr.engine.revalidation import revalidate
from isr.http.responses import json_error

log = logging.getLogger("isr")

MAX_BODY = 1_048_576  # bytes; a list of paths and tags, not a payload


class RevalidateEndpoint:
    def __init__(self, engine: Engine, tokens: list[str]) -> None:
        """`tokens`: the public revalidate token (if configured) and the workers' internal one."""
        self.engine = engine
        self.tokens = [t.encode() for t in tokens if t]
        self.public = len(tokens) > 0 and bool(tokens[0])

    async def __call__(self, request: web.BaseRequest) -> web.Response:
        if not self.engine.dev and not self._authorized(request.headers.get("Authorization", "")):
            if not self.public:  # only the server's own functions may call it
                return json_error(404, "NOT_FOUND", "on-demand revalidation is off: set ISR_REVALIDATE_TOKEN")
            return json_error(401, "UNAUTHORIZED", "missing or wrong bearer token")
        if request.method != "POST":
            return json_error(405, "METHOD_NOT_ALLOWED", "use POST", {"Allow": "POST"})
        body = await _body(request)
        if isinstance(body, str):
            return json_error(400, "BAD_REQUEST", body)
        paths, tags = body
        report = await revalidate(self.engine, paths, tags)
        for error in report.errors:
            log.warning("revalidate %s: %s %s", error["path"], error["code"], error["message"])
        return web.Response(
            status=207 if report.errors else 200, body=orjson.dumps(report.as_json()),
            content_type="application/json", headers={"Cache-Control": "no-store"},
        )

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        given = token.strip().encode()
        # compare_digest against every token, so timing says nothing about which one or how much matched
        matches = [hmac.compare_digest(given, t) for t in self.tokens]
        return scheme.lower() == "bearer" and any(matches)


async def _body(request: web.BaseRequest) -> tuple[list[str], list[str]] | str:
    """The paths and tags asked for, or what is wrong with the body."""
    if (request.content_length or 0) > MAX_BODY:
        return "body too large"
    try:
        body: Any = orjson.loads(await request.read())
    except (orjson.JSONDecodeError, web.HTTPRequestEntityTooLarge):
        return 'body must be JSON: {"paths": ["/a"], "tags": ["t"]}'
    if not isinstance(body, dict):
        return 'body must be a JSON object: {"paths": ["/a"], "tags": ["t"]}'
    unknown = set(body) - {"paths", "tags"}
    if unknown:
        return f"unknown key {sorted(unknown)[0]!r}: only \"paths\" and \"tags\""
    paths, tags = body.get("paths", []), body.get("tags", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
        return "paths must be a list of absolute paths (strings starting with /)"
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        return "tags must be a list of non-empty strings"
    if not paths and not tags:
        return "nothing to revalidate: give paths, tags or both"
    return paths, tags
