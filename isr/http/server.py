"""The request handler: the HIT hot path first, everything else after it.

A fresh HIT is one dict lookup on the raw path and a prebuilt response; it never
touches the disk cache, the router or the engine.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict

from isr.constants import DATA_PREFIX, HIT, NO_STORE, STALE
from isr.engine.engine import Answer, Engine, error_answer
from isr.errors import BadPath, FunctionError, PayloadTooLarge
from isr.http.admin import Admin
from isr.http.responses import json_error, respond
from isr.http.revalidate import RevalidateEndpoint
from isr.http.static import PublicFiles
from isr.site.paths import URL_SAFE, join_path, split_path
from isr.site.routes import Params, Route

log = logging.getLogger("isr")

_READ = frozenset({"GET", "HEAD"})


class Handler:
    def __init__(self, engine: Engine, revalidate: RevalidateEndpoint, admin: Admin) -> None:
        self.engine = engine
        self.revalidate = revalidate
        self.admin = admin
        self.site = engine.site
        self.memory = engine.store.memory
        self.hot = {} if engine.dev else self.memory.hot  # isr dev: no HIT, every request renders
        self.stats = admin.hub.stats
        self.public = PublicFiles(self.site.public)

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = request.raw_path
        query = raw.find("?")
        if query != -1:
            raw = raw[:query]
        hit = self.hot.get(raw)
        if hit is not None and request.method in _READ:
            record, variant = hit
            now = time.time()
            self.memory.touch(record.path)
            if now < record.stale_at:
                self.stats.hit += 1
                return respond(request, variant, HIT, record, now=now)
            self.stats.stale += 1
            self.engine.refresh_stale(record)
            return respond(request, variant, STALE, record, now=now)
        try:
            return await self._dispatch(request, raw)
        except BadPath as exc:
            return _bad_request(str(exc), raw.startswith(DATA_PREFIX))
        except FunctionError as exc:
            error_id = f"{self.engine.instance}::{secrets.token_hex(6)}"
            log.warning("%s %s: %s %s (id %s)\n%s", request.method, raw, exc.code, exc, error_id, exc.detail)
            answer = error_answer(exc, raw.startswith(("/api/", DATA_PREFIX)), error_id, self.engine.dev)
            return respond(request, answer.variant, extra=answer.headers)
        except Exception:
            log.exception("%s %s: internal error", request.method, raw)
            return json_error(500, "INTERNAL_SERVER_ERROR", "internal server error")

    async def _dispatch(self, request: web.BaseRequest, raw: str) -> web.StreamResponse:
        if raw.startswith(DATA_PREFIX):
            return await self._data(request, raw)
        if raw == "/_isr/revalidate":
            return await self.revalidate(request)
        if raw == "/_isr" or raw.startswith("/_isr/"):
            return await self.admin(request, raw)
        if len(raw) > 1 and raw.endswith("/"):
            return _redirect_without_slash(request, raw)
        segments = split_path(raw)
        if request.method in _READ and (file := self.public.find(segments)):
            return web.FileResponse(file)
        match = self.site.routes.match(segments)
        if match is None:
            return await self._answer(request, raw, await self.engine.not_found(join_path(segments)), False)
        route, params = match
        if request.method not in _READ and route.kind != "API":
            return _not_allowed()
        path = join_path(segments)
        if route.cached:
            answer = await self.engine.page(route, params, path, as_json=False)
        elif route.kind == "SSR":
            answer = await self.engine.server_side(route, params, path, _request_event(request), False)
        else:
            return await self._api(request, route, params, path)
        return await self._answer(request, raw, answer, False)

    async def _api(self, request: web.BaseRequest, route: Route, params: Params, path: str) -> web.Response:
        event = {"method": request.method, "path": path, "params": params, **_request_event(request)}
        event["body"] = await read_body(request, self.site.config.request_body_limit)
        result = await self.engine.invoke(route, "api", event)
        headers = CIMultiDict(result["headers"])
        headers.setdefault("Cache-Control", NO_STORE)
        return web.Response(status=result["status"], body=result["body"], headers=headers)

    async def _data(self, request: web.BaseRequest, raw: str) -> web.StreamResponse:
        build, _, rest = raw[len(DATA_PREFIX) :].partition("/")
        if request.method not in _READ:
            return _not_allowed()
        if build != self.site.build_id or not rest.endswith(".json"):
            return json_error(404, "NOT_FOUND", "unknown build or data URL; reload the page")
        name = rest[: -len(".json")]
        segments = [] if name == "index" else split_path("/" + name)
        match = self.site.routes.match(segments)
        if match is None or match[0].kind == "API":
            return json_error(404, "NOT_FOUND", "no page at this path")
        route, params = match
        path = join_path(segments)
        if route.cached:
            answer = await self.engine.page(route, params, path, as_json=True)
        else:
            answer = await self.engine.server_side(route, params, path, _request_event(request), True)
        return await self._answer(request, raw, answer, True)

    async def _answer(self, request: web.BaseRequest, raw: str, answer: Answer, as_json: bool) -> web.Response:
        if answer.record is not None:
            self.memory.alias(raw, answer.record, as_json)
        self.stats.count(answer.state)
        return respond(request, answer.variant, answer.state, answer.record, answer.headers)


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The request body, refused before the function sees it when over the limit."""
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge(f"request body of {request.content_length} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    while chunk := await request.content.read(2**16):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _request_event(request: web.BaseRequest) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        query[key] = values[0] if len(values) == 1 else values
    return {
        "query": query,
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "cookies": dict(request.cookies),
    }


def _redirect_without_slash(request: web.BaseRequest, raw: str) -> web.Response:
    # Rebuilt from checked segments and re-encoded: "//host/" or "/\\host/" must not leave the site.
    target = quote(join_path(split_path(raw.rstrip("/") or "/")), safe=URL_SAFE)
    if request.query_string:
        target += "?" + request.query_string
    return web.Response(status=308, headers={"Location": target, "Cache-Control": NO_STORE})


def _not_allowed() -> web.Response:
    return json_error(405, "METHOD_NOT_ALLOWED", "pages answer GET and HEAD only", {"Allow": "GET, HEAD"})


def _bad_request(message: str, as_json: bool) -> web.Response:
    if as_json:
        return json_error(400, "BAD_REQUEST", message)
    return web.Response(status=400, text=f"400: bad request: {message}", headers={"Cache-Control": NO_STORE})
