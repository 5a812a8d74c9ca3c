"""What to answer for a page path: cached generation, fallback, or a fresh render.

The engine decides and schedules; user code runs only through the Invoker.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from multidict import CIMultiDict

from isr.cache.record import Record, Variant, uncached_variant
from isr.cache.store import RecordStore
from isr.constants import ERROR_CODE, HIT, MISS, NO_STORE, STALE
from isr.engine.freshness import state_of
from isr.engine.scheduler import Scheduler
from isr.errors import BadPath, FunctionError, FunctionFailed, SiteError
from isr.logs.hub import LogHub
from isr.logs.record import LogRecord
from isr.runtime.invocation import Invocation, Invoker, Kind
from isr.site.paths import check_segment, join_path, segments_of, split_path
from isr.site.routes import Params, Route
from isr.site.site import Site


@dataclass
class Answer:
    """A response decided by the engine; the HTTP layer only encodes it."""

    variant: Variant
    state: str | None = None  # x-isr-cache
    record: Record | None = None  # for Age
    headers: dict[str, str] | None = None  # per-response extras (SSR headers)


class Engine:
    def __init__(
        self, site: Site, store: RecordStore, invoker: Invoker, hub: LogHub, instance: str, dev: bool = False, region: str = "local",
    ) -> None:
        self.site = site
        self.dev = dev  # isr dev: render every request
        self.store = store
        self.invoker = invoker
        self.hub = hub
        self.instance = instance
        self.region = region
        self.scheduler = Scheduler(store)
        store.counters = self.counters
        self._static_paths: dict[str, frozenset[str]] = {}
        self._not_found: Variant | None = None
        self._fallbacks: dict[str, asyncio.Future[Variant]] = {}  # route -> its fallback page

    # -- cached pages -------------------------------------------------------------

    async def page(self, route: Route, params: Params, path: str, as_json: bool) -> Answer:
        if self.dev:
            return await self._dev_page(route, params, path, as_json)
        record = await self.store.load(path)
        if record is not None:
            state = state_of(record, time.time())
            if state != HIT:
                self.refresh(route, params, record)
            return Answer(record.data if as_json else record.html, state, record)
        if not await self.allowed(route, path):
            return await self.not_found(path, as_json)
        if route.is_dynamic and route.fallback is True and not as_json:
            return await self._fallback(route, params, path)
        record = await self.generate(route, params, path)
        return Answer(record.data if as_json else record.html, MISS, record)

    async def _dev_page(self, route: Route, params: Params, path: str, as_json: bool) -> Answer:
        """`isr dev` renders every request, as `next dev` does."""
        if not await self.allowed(route, path):
            return await self.not_found(path, as_json)
        record = await self.revalidate(route, params, path, "render")
        return Answer(record.data if as_json else record.html, MISS, record)

    async def generate(self, route: Route, params: Params, path: str, kind: Kind = "render") -> Record:
        """Generate a path now, joining a generation of it already running."""
        return await self.scheduler.generate(path, self._job(route, params, path, kind), route.function.max_duration)

    async def revalidate(self, route: Route, params: Params, path: str, kind: Kind = "regenerate") -> Record:
        """Regenerate now from data at least as new as this call (no revalidation is lost)."""
        return await self.scheduler.revalidate(path, self._job(route, params, path, kind), route.function.max_duration)

    def refresh_stale(self, record: Record) -> None:
        """Start regenerating a stale record's path, unless that already runs or backs off."""
        path = record.path
        if not self.scheduler.may_refresh(path):
            return  # the common case under load: skip matching the route again
        route = self.site.routes.by_page[record.page]
        params = route.match(segments_of(path))
        if params is not None:
            self.refresh(route, params, record)

    def refresh(self, route: Route, params: Params, served: Record) -> None:
        """Regenerate a stale record in the background; its request is logged beside it, as on Vercel."""
        job = self._job(route, params, served.path, "regenerate")
        if self.scheduler.refresh(served.path, job, route.function.max_duration):
            self._log(LogRecord(route.file, served.path, "render", served.html.status, 0.0, cache=STALE))

    def _job(self, route: Route, params: Params, path: str, kind: Kind) -> Callable[[], Any]:
        async def job() -> tuple[Record, bytes]:
            raw = await self.invoke(route, kind, {"path": path, "params": params})
            return Record.from_bytes(raw), raw

        return job

    async def _fallback(self, route: Route, params: Params, path: str) -> Answer:
        """The route's fallback page at once, while the path generates in the background."""
        self.scheduler.refresh(path, self._job(route, params, path, "render"), route.function.max_duration)
        return Answer(await self._fallback_page(route, path), MISS)

    async def _fallback_page(self, route: Route, path: str) -> Variant:
        """Rendered once per route and build, by one invocation however many wait for it."""
        page = self._fallbacks.get(route.page)
        if page is None or (page.done() and (page.cancelled() or page.exception() is not None)):  # retried after a failure
            page = self._fallbacks[route.page] = asyncio.ensure_future(self._render_fallback(route, path))
        return await asyncio.shield(page)

    async def _render_fallback(self, route: Route, path: str) -> Variant:
        return uncached_variant(200, await self.invoke(route, "fallback", {"path": path}))

    async def allowed(self, route: Route, path: str) -> bool:
        """Whether a path with no generation yet may be generated (fallback: False)."""
        if not route.is_dynamic or route.fallback is not False:
            return True
        return path in await self.static_paths(route)

    async def static_paths(self, route: Route, fresh: bool = False) -> frozenset[str]:
        """The canonical paths get_static_paths returns, kept per build."""
        if not fresh and route.page in self._static_paths:
            return self._static_paths[route.page]
        stored = None if fresh else await self.store.static_paths(route.page)
        if stored is None:
            raw = await self.invoke(route, "paths", {"path": route.page}) if route.is_dynamic else [{}]
            stored = [self._static_path(route, entry) for entry in raw]
            await self.store.put_static_paths(route.page, stored)
        paths = self._static_paths[route.page] = frozenset(stored)
        return paths

    def _static_path(self, route: Route, entry: Any) -> str:
        """A get_static_paths entry (params, or a URL path as a browser sends it) as a canonical path."""
        try:
            if isinstance(entry, dict):
                segments = [check_segment(s) for s in route.segments_for(entry)]
            elif isinstance(entry, str):
                segments = split_path(entry)
            else:
                raise FunctionFailed(f"{route.file}: get_static_paths entries must be param dicts or path strings")
        except (BadPath, SiteError) as exc:
            raise FunctionFailed(f"{route.file}: get_static_paths returned {entry!r}: {exc}") from None
        match = self.site.routes.match(segments)
        if match is None or match[0] is not route:
            raise FunctionFailed(f"{route.file}: get_static_paths returned {entry!r}, which is not a path of {route.page}")
        return join_path(segments)

    # -- everything else ----------------------------------------------------------

    async def server_side(self, route: Route, params: Params, path: str, request: dict[str, Any], as_json: bool) -> Answer:
        result = await self.invoke(route, "ssr", {"path": path, "params": params, **request})
        variant: Variant = result["data"] if as_json else result["html"]
        headers = CIMultiDict(result["headers"])  # the function may spell names in any case
        variant.prepare(headers.pop("Cache-Control", NO_STORE), None)
        return Answer(variant, headers=dict(headers))

    async def not_found(self, path: str, as_json: bool = False) -> Answer:
        """The site's 404 page, rendered once per build (`path` names the request in the log)."""
        if as_json:
            return Answer(uncached_variant(404, b'{"not_found":true}', "application/json"))
        if self._not_found is None:
            file = self.site.not_found_file or "pages/404.html"
            html = await self.call(Invocation(file, "not_found", {"path": path}, self.site.config.defaults))
            self._not_found = uncached_variant(404, html)
        return Answer(self._not_found)

    async def invoke(self, route: Route, kind: Kind, event: dict[str, Any]) -> Any:
        return await self.call(Invocation(route.file, kind, event, route.function))

    async def call(self, invocation: Invocation) -> Any:
        """Run an invocation and leave its log record; its value, or its FunctionError."""
        started = time.perf_counter()
        try:
            result = await self.invoker.invoke(invocation)
        except FunctionError as exc:
            self._log(_record(invocation, exc.status, started, exc.logs, exc.memory_mb, error=exc))
            raise
        record = _record(invocation, _status(invocation.kind, result.value), started, result.logs, result.memory_mb)
        record.duration_ms = round(result.duration_ms, 3)  # the function's own time, not its queue's
        self._log(record)
        return result.value

    def counters(self) -> dict[str, Any]:
        """This process's counters, which the cache shares with every instance (a row per server)."""
        stats = self.hub.stats
        functions = stats.functions.values()
        return {
            "instance": self.instance, "region": self.region, "build": self.site.build_id,
            "hit": stats.hit, "stale": stats.stale, "miss": stats.miss,
            "invocations": sum(f.invocations for f in functions), "errors": sum(f.errors for f in functions),
            "regenerations": stats.regenerations, "in_flight": self.scheduler.in_flight,
        }

    def _log(self, record: LogRecord) -> None:
        record.instance = self.instance
        record.region = self.region
        self.hub.publish(record)

    async def close(self) -> None:
        await self.scheduler.drain()
        await self.invoker.close()
        await self.hub.flush()
        await self.store.backend.close()


_LOG_KIND = {"fallback": "render", "not_found": "render"}


def _record(invocation: Invocation, status: int, started: float, lines: list[str], memory: float = 0.0, error: FunctionError | None = None) -> LogRecord:
    kind = _LOG_KIND.get(invocation.kind, invocation.kind)
    return LogRecord(
        function=invocation.file, path=invocation.event.get("path", ""), kind=kind, status=status,
        duration_ms=(time.perf_counter() - started) * 1000, memory_mb=memory,
        cache=MISS if kind == "render" else None, lines=lines,
        error=error.code if error else None, message=str(error) if error else None,
    )


def _status(kind: Kind, value: Any) -> int:
    """The HTTP status an invocation's value stands for."""
    if kind in ("render", "regenerate"):
        return Record.status_of(value)
    if kind == "ssr":
        return int(value["html"].status)
    if kind == "api":
        return int(value["status"])
    return 404 if kind == "not_found" else 200


def error_answer(error: FunctionError, as_json: bool, error_id: str, dev: bool = False) -> Answer:
    """The answer for a failed invocation: never cacheable; the traceback only in `isr dev`."""
    if as_json:
        body = orjson.dumps({"error": {"code": error.code, "message": _reason(error.status), "id": error_id}})
        variant = uncached_variant(error.status, body, "application/json")
    else:
        variant = uncached_variant(error.status, _error_page(error, error_id, dev))
    return Answer(variant, headers={ERROR_CODE: error.code})


_REASONS = {500: "INTERNAL_SERVER_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT", 413: "PAYLOAD_TOO_LARGE"}


def _reason(status: int) -> str:
    return _REASONS.get(status, "ERROR")


def _error_page(error: FunctionError, error_id: str, dev: bool) -> bytes:
    title = f"{error.status}: {_reason(error.status)}"
    details = f"<h2>{html.escape(str(error))}</h2><pre>{html.escape(error.detail)}</pre>" if dev else ""
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
        f"<p>Code: <code>{error.code}</code></p><p>ID: <code>{error_id}</code></p>{details}</body></html>"
    ).encode()

