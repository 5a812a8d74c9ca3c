"""The operator's pages under /_isr/: dashboard, stats, live logs (SSE), metrics.

They need the revalidate token (Bearer header, or the cookie the dashboard's token
form sets) unless the server listens on loopback only.
"""

from __future__ import annotations

import asyncio
import hmac
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
from isr.http.responses import json_error
from isr.logs.hub import LogHub
from isr.logs.record import Filter, LogRecord
from isr.logs.stats import BUCKETS, Stats

COOKIE = "isr_token"
KEEPALIVE_S = 5.0  # an SSE comment this often keeps proxies open and finds gone clients
LOOPBACK = {"127.0.0.1", "::1", "localhost"}

_LOGIN = """<!doctype html><html><head><title>isr · sign in</title></head>
<body style="font:15px system-ui;max-width:420px;margin:80px auto">
<h1>isr dashboard</h1><p>This server listens beyond loopback: enter its revalidate token.</p>
<form method="post" action="/_isr/login"><input type="password" name="token" autofocus
style="width:100%;padding:8px" placeholder="ISR_REVALIDATE_TOKEN"><p><button>Sign in</button></p></form>
{error}</body></html>"""


class Admin:
    def __init__(self, engine: Engine, hub: LogHub, token: str, loopback_only: bool) -> None:
        self.engine = engine
        self.hub = hub
        self.token = token.encode()
        self.open = loopback_only
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(engine, hub.stats))
        template = files("isr.http").joinpath("dashboard.html").read_text()
        site = engine.site
        self.page = (
            template.replace("{{SITE}}", escape(str(site.root)))
            .replace("{{BUILD}}", site.build_id)
            .replace("{{INSTANCE}}", engine.instance)
        )

    async def __call__(self, request: web.BaseRequest, raw: str) -> web.StreamResponse:
        if raw == "/_isr/login" and request.method == "POST":
            return await self._login(request)
        if not self._allowed(request):
            if raw in ("/_isr", "/_isr/"):
                return _html(_LOGIN.format(error=""), 401)
            return json_error(401, "UNAUTHORIZED", "needs the revalidate token")
        if raw in ("/_isr", "/_isr/"):
            return _html(self.page)
        if raw == "/_isr/stats":
            return _json(self.stats())
        if raw == "/_isr/metrics":
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": NO_STORE})
        if raw == "/_isr/logs":
            return await self._logs(request)
        return json_error(404, "NOT_FOUND", "no such isr endpoint")

    def _allowed(self, request: web.BaseRequest) -> bool:
        if self.open:
            return True
        if not self.token:
            return False  # no token configured: nobody from outside
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        bearer = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token)
        cookie = hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), self.token)
        return bearer or cookie

    async def _login(self, request: web.BaseRequest) -> web.Response:
        form = await request.post()
        given = str(form.get("token", "")).encode()
        if not self.token or not hmac.compare_digest(given, self.token):
            return _html(_LOGIN.format(error="<p style='color:#c00'>Wrong token.</p>"), 401)
        response = web.Response(status=303, headers={"Location": "/_isr/", "Cache-Control": NO_STORE})
        response.set_cookie(COOKIE, given.decode(), httponly=True, samesite="Strict", path="/_isr")
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
        return {
            "functions": functions,
            "cache": {
                "records": len(memory.paths()), "bytes": memory.bytes, "hit": stats.hit, "stale": stats.stale,
                "miss": stats.miss, "hit_ratio": stats.hit_ratio, "regenerations": stats.regenerations,
                "failures": stats.failed_regenerations, "in_flight": self.engine.scheduler.in_flight,
            },
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


def _event(record: LogRecord) -> bytes:
    return b"data: " + orjson.dumps(record.as_json()) + b"\n\n"


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/html", headers={"Cache-Control": NO_STORE})


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
        return [
            requests, invocations, durations, regenerations,
            GaugeMetricFamily("isr_regenerations_in_flight", "Generations running now", value=self.engine.scheduler.in_flight),
            GaugeMetricFamily("isr_cache_bytes", "Bytes of records held in memory", value=memory.bytes),
            GaugeMetricFamily("isr_cache_records", "Records held in memory", value=len(memory.paths())),
        ]
