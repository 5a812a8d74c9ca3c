"""The operator's pages under /_isr/: dashboard, stats, live logs (SSE), metrics.

Who may see them is `isr.http.access`; this module answers a refusal with the sign-in
form (dashboard) or a JSON error, and turns a right token in the form into a session.
"""

from __future__ import annotations

import asyncio
import time
from html import escape
from importlib.resources import files
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from isr.constants import HIT, MISS, NO_STORE, STALE
from isr.engine.engine import Engine
from isr.http.access import CLOSED, COOKIE, SIGN_IN, Gate, Refusal
from isr.http.responses import json_error
from isr.http.session import SESSION_S
from isr.logs.hub import LogHub
from isr.logs.record import Filter, LogRecord
from isr.logs.stats import BUCKETS, Stats

KEEPALIVE_S = 5.0  # an SSE comment this often keeps proxies open and finds gone clients
DASHBOARD = ("/_isr", "/_isr/")
MAX_FORM = 4096  # bytes of a sign-in form

_FORM = """<form method="post" action="/_isr/login"><input type="password" name="token" autofocus
style="width:100%;padding:8px" placeholder="ISR_REVALIDATE_TOKEN"><p><button>Sign in</button></p></form>"""
_SIGN_IN = """<!doctype html><html><head><title>isr · sign in</title></head>
<body style="font:15px system-ui;max-width:420px;margin:80px auto">
<h1>isr dashboard</h1><p>{intro}</p>{form}{error}</body></html>"""
_ASK = "Enter this server's revalidate token to open the dashboard."
_NO_TOKEN = "The dashboard is open only to this machine (http://127.0.0.1 or http://localhost, not through a proxy): no ISR_REVALIDATE_TOKEN is set."


class Admin:
    def __init__(self, engine: Engine, hub: LogHub, token: str) -> None:
        self.engine = engine
        self.hub = hub
        self.gate = Gate(token)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(engine, hub.stats))
        template = files("isr.http").joinpath("dashboard.html").read_text()
        site = engine.site
        uplot = files("isr.http").joinpath("vendor")
        self.page = (
            template.replace("{{UPLOT_CSS}}", uplot.joinpath("uPlot.min.css").read_text())
            .replace("{{UPLOT_JS}}", uplot.joinpath("uPlot.iife.min.js").read_text())
            .replace("{{SITE}}", escape(str(site.root)))
            .replace("{{BUILD}}", site.build_id)
            .replace("{{INSTANCE}}", engine.instance)
        )

    async def __call__(self, request: web.BaseRequest, raw: str) -> web.StreamResponse:
        if raw == "/_isr/login" and request.method == "POST":
            return await self._sign_in(request)
        refusal = self.gate.check(request, time.time())
        if refusal is not None:
            return _refuse(refusal, raw in DASHBOARD)
        if raw in DASHBOARD:
            return _html(self.page)
        if raw in ("/_isr/stats", "/_isr/metrics"):
            await self.engine.store.count_usage()  # the whole cache, as of now
        if raw == "/_isr/stats":
            servers = await self.engine.store.servers(self.engine.instance)
            return _json({**self.stats(), "servers": [{"server": name, **row} for name, row in sorted(servers.items())]})
        if raw == "/_isr/metrics":
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": NO_STORE})
        if raw == "/_isr/logs":
            return await self._logs(request)
        return json_error(404, "NOT_FOUND", "no such isr endpoint")

    async def _sign_in(self, request: web.BaseRequest) -> web.Response:
        now = time.time()
        refusal = self.gate.try_token(request, await _form_token(request), now)
        if refusal is not None:
            return _refuse(refusal, True)
        response = web.Response(status=303, headers={"Location": "/_isr/", "Cache-Control": NO_STORE})
        # Strict: the cookie rides on no request another site starts (the price: following
        # a link to the dashboard from elsewhere shows the form once more).
        response.set_cookie(
            COOKIE, self.gate.sessions.issue(now), max_age=SESSION_S, path="/_isr",
            httponly=True, samesite="Strict", secure=_over_https(request) or None,
        )
        return response

    def stats(self) -> dict[str, Any]:
        stats = self.hub.stats
        functions = []
        for route in self.engine.site.routes.routes:
            f = stats.functions.get(route.file)
            functions.append({
                "route": route.page, "file": route.file, "kind": route.kind, "bundle": route.function.bundle,
                "invocations": f.invocations if f else 0, "errors": f.errors if f else 0,
                "p50_ms": f.percentile(0.5) if f else 0.0, "p99_ms": f.percentile(0.99) if f else 0.0,
            })
        memory = self.engine.store.memory
        records, size = self.engine.store.usage
        return {
            "functions": functions,
            "cache": {
                "records": records, "bytes": size, "memory_records": len(memory), "memory_bytes": memory.bytes,
                "hit": stats.hit, "stale": stats.stale,
                "miss": stats.miss, "hit_ratio": stats.hit_ratio, "regenerations": stats.regenerations,
                "failures": stats.failed_regenerations, "in_flight": self.engine.scheduler.in_flight,
            },
            "series": list(stats.series),  # per-second buckets for the charts, oldest first
        }

    async def _logs(self, request: web.BaseRequest) -> web.StreamResponse:
        keep = _filter(request.query)
        recent = request.query.get("recent", "0")
        if not recent.isdigit():
            return json_error(400, "BAD_REQUEST", "recent must be a number of records")
        if request.query.get("follow") != "1":
            return _json([r.as_json() for r in await self.hub.read(keep)])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": NO_STORE, "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue = self.hub.subscribe()
        try:
            backlog = [r for r in self.hub.recent if keep(r)][-int(recent):] if int(recent) else []
            await response.write(b": connected\n\n" + b"".join(_event(r) for r in backlog))
            while True:
                try:
                    record = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if record is None:
                    break  # the server is stopping
                if keep(record):
                    await response.write(_event(record))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.unsubscribe(queue)
        return response


def _filter(query: Any) -> Filter:
    since = query.get("since")
    try:
        since_time = time.time() - float(since) if since else 0.0
    except ValueError:
        since_time = 0.0
    return Filter(function=query.get("function") or None, errors=query.get("errors") == "1", since=since_time)


def _refuse(refusal: Refusal, as_page: bool) -> web.Response:
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else {}
    if not as_page:
        return json_error(refusal.status, refusal.code, refusal.message, headers)
    if refusal is CLOSED:
        return _html(_SIGN_IN.format(intro=_NO_TOKEN, form="", error=""), refusal.status)
    error = "" if refusal is SIGN_IN else f"<p style='color:#c00'>{escape(refusal.message)}</p>"
    return _html(_SIGN_IN.format(intro=_ASK, form=_FORM, error=error), refusal.status, headers)


async def _form_token(request: web.BaseRequest) -> str | None:
    """The form's token field; None for a body that is no small urlencoded form (a wrong try, not a 500)."""
    if request.content_type != "application/x-www-form-urlencoded" or (request.content_length or 0) > MAX_FORM:
        return None
    try:
        token = (await request.post()).get("token")
    except (ValueError, web.HTTPException):
        return None
    return token if isinstance(token, str) else None


def _over_https(request: web.BaseRequest) -> bool:
    """TLS here or at the proxy; a client that claims it only marks its own cookie Secure."""
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or proto == "https" or any(f.get("proto", "").lower() == "https" for f in request.forwarded)


def _event(record: LogRecord) -> bytes:
    return b"data: " + orjson.dumps(record.as_json()) + b"\n\n"


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/html", headers={"Cache-Control": NO_STORE, **(headers or {})})


def _json(value: Any) -> web.Response:
    return web.Response(body=orjson.dumps(value), content_type="application/json", headers={"Cache-Control": NO_STORE})


class _Collector:
    """Prometheus metrics read from the stats at scrape time (the hot path only adds ints)."""

    def __init__(self, engine: Engine, stats: Stats) -> None:
        self.engine = engine
        self.stats = stats

    def collect(self) -> list[Metric]:
        stats = self.stats
        requests = CounterMetricFamily("isr_requests", "Page requests by x-isr-cache outcome", labels=["cache"])
        for name, value in ((HIT, stats.hit), (STALE, stats.stale), (MISS, stats.miss)):
            requests.add_metric([name], value)
        invocations = CounterMetricFamily("isr_invocations", "Function invocations by outcome", labels=["function", "outcome"])
        durations = HistogramMetricFamily("isr_invocation_duration_seconds", "Invocation duration", labels=["function"])
        for function, f in sorted(stats.functions.items()):
            for outcome, count in sorted(f.outcomes.items()):
                invocations.add_metric([function, outcome], count)
            cumulative, buckets = 0, []
            for bound, count in zip([*map(str, BUCKETS), "+Inf"], f.buckets, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            durations.add_metric([function], buckets, f.seconds)
        regenerations = CounterMetricFamily("isr_regenerations", "Background and on-demand regenerations", labels=["outcome"])
        regenerations.add_metric(["ok"], stats.regenerations - stats.failed_regenerations)
        regenerations.add_metric(["failed"], stats.failed_regenerations)
        memory = self.engine.store.memory
        records, size = self.engine.store.usage
        health = self.engine.store.backend.health
        labels = GaugeMetricFamily("isr_instance", "This server's instance and region (value 1)", labels=["isr_instance", "region", "build"])
        labels.add_metric([self.engine.instance, self.engine.region, self.engine.site.build_id], 1)
        return [
            requests, invocations, durations, regenerations, labels,
            GaugeMetricFamily("isr_cache_available", "1 while the shared cache answers, 0 during an outage", value=int(health.available)),
            CounterMetricFamily("isr_cache_outages", "Times the shared cache stopped answering", value=health.outages),
            GaugeMetricFamily("isr_regenerations_in_flight", "Generations running now", value=self.engine.scheduler.in_flight),
            GaugeMetricFamily("isr_cache_records", "Records of the served build in the whole cache", value=records),
            GaugeMetricFamily("isr_cache_bytes", "Bytes the cache takes on disk", value=size),
            GaugeMetricFamily("isr_cache_memory_records", "Records this process holds in memory", value=len(memory)),
            GaugeMetricFamily("isr_cache_memory_bytes", "Bytes of cached pages this process holds in memory", value=memory.bytes),
        ]
