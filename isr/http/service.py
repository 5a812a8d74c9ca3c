"""The running server: its listener, the deployment it serves, and on SIGHUP the switch
to the newest complete build without failing or dropping a request."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import signal
from collections.abc import Callable
from pathlib import Path

from isr.app import open_backend, open_engine, revalidate_token
from isr.cache.backend import Backend
from isr.constants import INTERNAL_TOKEN_VARIABLE, URL_VARIABLE
from isr.errors import IsrError
from isr.http.admin import Admin
from isr.http.protocol import ConnectionServer
from isr.http.revalidate import RevalidateEndpoint
from isr.http.server import Deployment, Handler
from isr.logs.hub import LogHub
from isr.site.builds import newest_complete
from isr.site.site import Site

log = logging.getLogger("isr")

FOLLOW_INTERVAL_S = 0.5  # how often to look for generations other processes stored
SHUTDOWN_TIMEOUT_S = 5.0
DRAIN_POLL_S = 0.05  # how often a replaced deployment checks for requests still on it
# Allocations between two young-generation collections (Python's default is 700). Serving a
# page read from disk allocates a record's objects each time; at the default the collector
# ran every few requests and took about a tenth of the disk-backed HIT rate.
GC_THRESHOLD = 20_000

Reload = Callable[[Path], Site]  # the served site with its code read from this snapshot


async def serve(
    site: Site, host: str, port: int, cache: str | None, reuse_port: bool = False, dev: bool = False, reload: Reload | None = None,
    instance: str = "", region: str = "",
) -> None:
    """Serve until SIGINT or SIGTERM; with `reload`, SIGHUP switches to the newest complete build.
    `instance` and `region` label its logs and metrics (defaults: see open_engine)."""
    internal = os.environ.get(INTERNAL_TOKEN_VARIABLE) or secrets.token_urlsafe(24)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    service = Service(cache, {URL_VARIABLE: url, INTERNAL_TOKEN_VARIABLE: internal}, dev, region)
    await service.run(site, host, port, reuse_port, reload, instance)


class Service:
    def __init__(self, cache: str | None, environ: dict[str, str], dev: bool, region: str = "") -> None:
        self.cache = cache
        self.region = region
        self.environ = environ  # for functions: ISR_URL and the internal revalidation token
        self.dev = dev
        self.handler: Handler | None = None
        self._follow: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # switches and retiring deployments
        self._switching = asyncio.Lock()

    def deployment(self, site: Site, hub: LogHub | None = None, instance: str = "", backend: Backend | None = None) -> Deployment:
        engine = open_engine(site, self.cache, self.environ, instance, dev=self.dev, hub=hub, region=self.region, backend=backend)
        token = revalidate_token(site)
        endpoint = RevalidateEndpoint(engine, [token, self.environ[INTERNAL_TOKEN_VARIABLE]])
        return Deployment(engine, endpoint, Admin(engine, engine.hub, token))

    async def run(self, site: Site, host: str, port: int, reuse_port: bool, reload: Reload | None, instance: str = "") -> None:
        first = self.deployment(site, instance=instance)
        self.handler = Handler(first)
        server = ConnectionServer(self.handler)
        loop = asyncio.get_running_loop()
        try:
            listener = await loop.create_server(server, host, port, reuse_address=True, reuse_port=reuse_port, backlog=1024)
        except OSError as exc:
            await first.engine.close()
            raise IsrError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if reload is not None:
            loop.add_signal_handler(signal.SIGHUP, self._on_hangup, reload)
        _tune_collector()
        self._serve(first)
        hub = asyncio.create_task(first.engine.hub.run())
        mode = "development server for" if self.dev else "serving"
        print(f"isr: {mode} {site.root} (build {site.build_id}) on http://{host}:{port}", flush=True)
        try:
            await stop.wait()
        finally:
            hub.cancel()
            if self._follow is not None:
                self._follow.cancel()
            first.engine.hub.end_streams()
            listener.close()
            await server.shutdown(timeout=SHUTDOWN_TIMEOUT_S)
            while self._tasks:  # a switch under way, then the deployments it retires
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.handler.current.engine.close()

    def _serve(self, deployment: Deployment) -> None:
        """Hand new requests to a deployment, its workers warming and its cache followed."""
        assert self.handler is not None
        deployment.engine.invoker.prewarm()
        follow = asyncio.create_task(deployment.engine.store.follow(FOLLOW_INTERVAL_S, deployment.engine.instance))
        if self._follow is not None:
            self._follow.cancel()
        self._follow = follow
        self.handler.current = deployment  # one assignment: a request sees the old or the new build

    def _on_hangup(self, reload: Reload) -> None:
        self._hold(asyncio.create_task(self.switch(reload)))

    def _hold(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def switch(self, reload: Reload) -> None:
        """Serve the newest complete build, if it is not the one served; close the old one
        once the requests that started on it have ended."""
        assert self.handler is not None
        async with self._switching:
            old = self.handler.current
            build = await asyncio.to_thread(newest_complete, old.site.root)
            if build is None or build.build_id == old.site.build_id:
                log.info("SIGHUP: no newer complete build; still serving build %s", old.site.build_id)
                return
            backend: Backend | None = None
            try:
                site = await asyncio.to_thread(reload, build.code)  # hashing the code: off the loop
                backend = await asyncio.to_thread(open_backend, site, self.cache)  # a Redis URL is pinged: off the loop
                new = self.deployment(site, old.engine.hub, old.engine.instance, backend)  # workers start from the main thread
            except Exception as exc:  # a HUP must never take the serving build down with it
                if backend is not None:
                    await backend.close()
                if isinstance(exc, IsrError):
                    log.error("SIGHUP: cannot serve build %s: %s; still serving build %s", build.build_id, exc, old.site.build_id)
                else:
                    log.exception("SIGHUP: cannot serve build %s; still serving build %s", build.build_id, old.site.build_id)
                return
            self._serve(new)
            print(f"isr: now serving build {new.site.build_id} (was {old.site.build_id})", flush=True)
        self._hold(asyncio.create_task(_retire(old)))


async def _retire(deployment: Deployment) -> None:
    while deployment.in_flight:
        await asyncio.sleep(DRAIN_POLL_S)
    await deployment.engine.close()


def _tune_collector() -> None:
    """Leave what start-up loaded (the site, modules, templates) out of every collection,
    and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
