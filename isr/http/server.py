"""The request handler: the HIT hot path first, everything else after it.

A fresh HIT is one dict lookup on the raw path and one write of prebuilt bytes; it never
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

from isr.cache.layout import Served
from isr.constants import DATA_PREFIX, HIT, NO_STORE, READ_METHODS, STALE
from isr.engine.engine import Answer, Engine, error_answer
from isr.errors import BadPath, FunctionError
from isr.http.admin import Admin
from isr.http.protocol import headers_too_large, read_body, too_large_headers
from isr.http.responses import json_error, plain_coding, respond, respond_stored
from isr.http.revalidate import RevalidateEndpoint
from isr.http.static import PublicFiles
from isr.site.paths import URL_SAFE, join_path, split_path
from isr.site.routes import Params, Route

log = logging.getLogger("isr")


class Deployment:
    """One build as the handler serves it: its engine and the endpoints on it.

    A `kill -HUP` swaps the handler's deployment in one assignment; each request keeps
    the one it started on, so requests in flight finish on the old build.
    """

    def __init__(self, engine: Engine, revalidate: RevalidateEndpoint, admin: Admin) -> None:
        self.engine = engine
        self.revalidate = revalidate
        self.admin = admin
        self.site = engine.site
        self.memory = engine.store.memory
        self.hot = {} if engine.dev else self.memory.hot  # isr dev: no HIT, every request renders
        self.store = None if engine.dev else engine.store
        self.stats = engine.hub.stats
        self.public = PublicFiles(self.site.public)  # the live site's, indexed anew at each switch
        self.in_flight = 0  # requests past the hot path that may still call the engine


class Handler:
    def __init__(self, deployment: Deployment) -> None:
        self.current = deployment

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        live = self.current
        raw = request.raw_path
        query = raw.find("?")
        if query != -1:
            raw = raw[:query]
        record = live.hot.get(raw)
        if record is not None and request.method in READ_METHODS and _ascii(request.raw_headers):
            variant = record.data if raw.startswith(DATA_PREFIX) else record.html
            now = time.time()
            live.memory.touch(record, now)
            if now < record.stale_at:
                live.stats.hit += 1
                return respond(request, variant, HIT, record, now=now)
            live.stats.stale += 1
            live.engine.refresh_stale(record)
            return respond(request, variant, STALE, record, now=now)
        if record is None and _names_itself(raw) and (spilled := _spilled(request, raw, live)) is not None:
            return spilled
        try:
            if headers_too_large(request):
                return too_large_headers()
            check_text(request)
            if _is_admin(raw):
                return await live.admin(request, raw)  # not counted in flight: log streams last
            live.in_flight += 1  # the deployment's engine stays open until it ends
            try:
                return await self._dispatch(request, raw, live)
            finally:
                live.in_flight -= 1
        except BadPath as exc:
            return _bad_request(str(exc), raw.startswith(DATA_PREFIX))
        except FunctionError as exc:
            error_id = f"{live.engine.instance}::{secrets.token_hex(6)}"
            log.warning("%s %s: %s %s (id %s)\n%s", request.method, raw, exc.code, exc, error_id, exc.detail)
            answer = error_answer(exc, raw.startswith(("/api/", DATA_PREFIX)), error_id, live.engine.dev)
            return respond(request, answer.variant, extra=answer.headers)
        except Exception:
            log.exception("%s %s: internal error", request.method, raw)
            return json_error(500, "INTERNAL_SERVER_ERROR", "internal server error")

    async def _dispatch(self, request: web.BaseRequest, raw: str, live: Deployment) -> web.StreamResponse:
        if raw.startswith(DATA_PREFIX):
            return await self._data(request, raw, live)
        if raw == "/_isr/revalidate":
            return await live.revalidate(request)
        if len(raw) > 1 and raw.endswith("/"):
            return _redirect_without_slash(request, raw)
        segments = split_path(raw)
        if request.method in READ_METHODS and (file := live.public.find(segments)):
            return web.FileResponse(file)
        match = live.site.routes.match(segments)
        if match is None:
            return await self._answer(request, raw, await live.engine.not_found(join_path(segments)), live)
        route, params = match
        if request.method not in READ_METHODS and route.kind != "API":
            return _not_allowed()
        path = join_path(segments)
        if route.cached:
            if stored := await self._stored(request, path, "html", live):
                return stored
            answer = await live.engine.page(route, params, path, as_json=False)
        elif route.kind == "SSR":
            answer = await live.engine.server_side(route, params, path, _request_event(request), False)
        else:
            return await self._api(request, route, params, path, live)
        return await self._answer(request, raw, answer, live)

    async def _stored(self, request: web.BaseRequest, path: str, variant: str, live: Deployment) -> web.StreamResponse | None:
        """A fresh HIT of a page memory does not keep, read from the cache as its stored
        response; None where the engine answers (see RecordStore.served)."""
        if live.store is None or not (coding := plain_coding(request)):
            return None
        return _stored_hit(request, await live.store.served(path, variant, coding), live)

    async def _api(self, request: web.BaseRequest, route: Route, params: Params, path: str, live: Deployment) -> web.Response:
        event = {"method": request.method, "path": path, "params": params, **_request_event(request)}
        event["body"] = await read_body(request, live.site.config.request_body_limit)
        result = await live.engine.invoke(route, "api", event)
        headers = CIMultiDict(result["headers"])
        headers.setdefault("Cache-Control", NO_STORE)
        return web.Response(status=result["status"], body=result["body"], headers=headers)

    async def _data(self, request: web.BaseRequest, raw: str, live: Deployment) -> web.StreamResponse:
        build, _, rest = raw[len(DATA_PREFIX) :].partition("/")
        if request.method not in READ_METHODS:
            return _not_allowed()
        if build != live.site.build_id or not rest.endswith(".json"):
            return json_error(404, "NOT_FOUND", "unknown build or data URL; reload the page")
        name = rest[: -len(".json")]
        segments = [] if name == "index" else split_path("/" + name)
        match = live.site.routes.match(segments)
        if match is None or match[0].kind == "API":
            return json_error(404, "NOT_FOUND", "no page at this path")
        route, params = match
        path = join_path(segments)
        if route.cached:
            if stored := await self._stored(request, path, "data", live):
                return stored
            answer = await live.engine.page(route, params, path, as_json=True)
        else:
            answer = await live.engine.server_side(route, params, path, _request_event(request), True)
        return await self._answer(request, raw, answer, live)

    async def _answer(self, request: web.BaseRequest, raw: str, answer: Answer, live: Deployment) -> web.StreamResponse:
        if answer.record is not None:
            live.memory.alias(raw, answer.record)
        live.stats.count(answer.state)
        return respond(request, answer.variant, answer.state, answer.record, answer.headers)


def _names_itself(raw: str) -> bool:
    """Whether a raw path is the page path routing would give it: no percent sign to decode,
    and not under /_isr, which the server answers before routing (a page path can be
    `/_isr/stats` when a catch-all routes `/%5Fisr/stats`)."""
    return "%" not in raw and not raw.startswith("/_isr")


def _spilled(request: web.BaseRequest, raw: str, live: Deployment) -> web.StreamResponse | None:
    """A HIT read back at once from the spill of a page memory does not keep (RecordStore.spilled),
    before routing: only a page's path that routed to its cached route has responses spilled
    under it (by `_stored`), and a raw path that names itself is that path."""
    if live.store is None or not _ascii(request.raw_headers) or not (coding := plain_coding(request)):
        return None
    return _stored_hit(request, live.store.spilled(raw, "html", coding), live)


def _stored_hit(request: web.BaseRequest, served: Served | None, live: Deployment) -> web.StreamResponse | None:
    if served is None:
        return None
    live.stats.hit += 1
    return respond_stored(request, served, time.time())


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


def _ascii(headers: tuple[tuple[bytes, bytes], ...]) -> bool:
    """Every header value is ASCII, as nearly always: a HIT may be served at once. Any other
    request takes the slow path, where check_text answers 400 to what is not UTF-8."""
    for _, value in headers:  # noqa: SIM110 - a loop: all() with a generator costs this HIT twice as much
        if not value.isascii():
            return False
    return True


def _is_admin(raw: str) -> bool:
    """The dashboard, logs, stats and metrics: everything under /_isr/ but revalidation and data."""
    return raw == "/_isr" or (raw.startswith("/_isr/") and raw != "/_isr/revalidate" and not raw.startswith(DATA_PREFIX))


def check_text(request: web.BaseRequest) -> None:
    """BadPath (400) when the path or a header is not UTF-8: aiohttp hands such bytes on as
    lone surrogates, which nothing downstream (cache keys, functions, logs) can encode.
    A token that is not UTF-8 is a wrong token (401), where it is checked."""
    try:
        request.raw_path.encode()
        for name, value in request.raw_headers:
            name.decode()
            if name.lower() != b"authorization":
                value.decode()
    except UnicodeError:
        raise BadPath("the path or a header is not valid UTF-8") from None


def _redirect_without_slash(request: web.BaseRequest, raw: str) -> web.Response:
    # Rebuilt from checked segments and re-encoded: "//host/" or "/\\host/" must not leave the site.
    target = quote(join_path(split_path(raw.rstrip("/") or "/")), safe=URL_SAFE)
    query = request.raw_path.partition("?")[2]
    if query:  # as sent, re-encoded: a decoded %0d%0a would break the header
        target += "?" + quote(query, safe=URL_SAFE + "/?%")
    return web.Response(status=308, headers={"Location": target, "Cache-Control": NO_STORE})


def _not_allowed() -> web.Response:
    return json_error(405, "METHOD_NOT_ALLOWED", "pages answer GET and HEAD only", {"Allow": "GET, HEAD"})


def _bad_request(message: str, as_json: bool) -> web.Response:
    if as_json:
        return json_error(400, "BAD_REQUEST", message)
    return web.Response(status=400, text=f"400: bad request: {message}", headers={"Cache-Control": NO_STORE})
