"""POST /_isr/revalidate: who may call it and what a valid body is."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import orjson
from aiohttp import web

from isr.engine.engine import Engine
from isr.engine.revalidation import revalidate
from isr.errors import CacheUnavailable, PayloadTooLarge
from isr.http.protocol import read_body
from isr.http.responses import json_error
from isr.http.session import as_bytes

log = logging.getLogger("isr")

MAX_BODY = 2 * 1_048_576  # bytes; a list of paths and tags, not a payload
MAX_PATHS = 10_000  # per call: its cost is linear in its size, and bounded
MAX_TAGS = 1_000


class RevalidateEndpoint:
    def __init__(self, engine: Engine, tokens: list[str]) -> None:
        """`tokens`: the public revalidate token (if configured) and the workers' internal one."""
        self.engine = engine
        self.tokens = [as_bytes(t) for t in tokens if t]
        self.public = len(tokens) > 0 and bool(tokens[0])

    async def __call__(self, request: web.BaseRequest) -> web.Response:
        if not self.engine.dev and not self._authorized(request.headers.get("Authorization", "")):
            if not self.public:  # only the server's own functions may call it
                return json_error(404, "NOT_FOUND", "on-demand revalidation is off: set ISR_REVALIDATE_TOKEN")
            return json_error(401, "UNAUTHORIZED", "missing or wrong bearer token")
        if request.method != "POST":
            return json_error(405, "METHOD_NOT_ALLOWED", "use POST", {"Allow": "POST"})
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        paths, tags = body
        try:
            report = await revalidate(self.engine, paths, tags)
        except CacheUnavailable as exc:  # a tag mark must reach every instance, or be refused
            log.warning("revalidate: %s", exc)
            return json_error(503, "CACHE_UNAVAILABLE", f"{exc}: try again once it answers")
        if report.errors:  # one line, whatever the size of the call
            first = report.errors[0]
            log.warning("revalidate: %d of the paths failed, first %s: %s %s", len(report.errors), first["path"], first["code"], first["message"])
        return web.Response(
            status=207 if report.errors else 200, body=orjson.dumps(report.as_json()),
            content_type="application/json", headers={"Cache-Control": "no-store"},
        )

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        given = as_bytes(token.strip())  # a token that is not UTF-8 is just a wrong one
        # compare_digest against every token, so timing says nothing about which one or how much matched
        matches = [hmac.compare_digest(given, t) for t in self.tokens]
        return scheme.lower() == "bearer" and any(matches)


async def _body(request: web.BaseRequest) -> tuple[list[str], list[str]] | web.Response:
    """The paths and tags asked for, or the answer saying what is wrong with the body."""
    try:
        body: Any = orjson.loads(await read_body(request, MAX_BODY))
    except PayloadTooLarge:
        return _too_large(f"the body is over {MAX_BODY} bytes")
    except orjson.JSONDecodeError:
        return _bad('body must be JSON: {"paths": ["/a"], "tags": ["t"]}')
    problem = _problem(body)
    if problem is not None:
        return _bad(problem)
    paths, tags = body.get("paths", []), body.get("tags", [])
    if len(paths) > MAX_PATHS or len(tags) > MAX_TAGS:
        return _too_large(f"at most {MAX_PATHS} paths and {MAX_TAGS} tags per call")
    return paths, tags


def _problem(body: Any) -> str | None:
    """What is wrong with a parsed body, if anything."""
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
    return None


def _bad(message: str) -> web.Response:
    return json_error(400, "BAD_REQUEST", message)


def _too_large(message: str) -> web.Response:
    return json_error(413, "PAYLOAD_TOO_LARGE", message)
