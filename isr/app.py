"""Wiring: a site, its cache and its invoker into an engine."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dotenv import dotenv_values

from isr.cache.disk import DiskBackend
from isr.cache.memory import MemoryCache
from isr.cache.store import RecordStore
from isr.constants import TOKEN_VARIABLE
from isr.engine.engine import Engine
from isr.errors import CacheError
from isr.logs.hub import LogHub
from isr.logs.stats import Stats
from isr.logs.store import LogStore, log_folder
from isr.runtime.pool import WorkerInvoker
from isr.site.site import Site


def open_engine(
    site: Site, cache: str | None, environ: dict[str, str] | None = None, instance: str = "", dev: bool = False,
    hub: LogHub | None = None,
) -> Engine:
    """An engine on the disk cache in `cache` (default: the site's cache/ folder), logging
    every invocation to `hub` (default: a new one on the site's log store).

    `environ` reaches functions on top of the server's environment and .env. The cache
    sizes are the site config's (isr.json, or the CLI's overrides).
    """
    if cache and "://" in cache:
        raise CacheError(f"--cache {cache}: only a folder is supported so far (no Redis backend yet)")
    backend = DiskBackend(Path(cache) if cache else site.root / "cache", site.config.cache_disk)
    store = RecordStore(backend, site.build_id, MemoryCache(site.config.cache_memory))
    hub = hub or LogHub(LogStore(log_folder(site.root)), Stats())
    return Engine(site, store, WorkerInvoker(site, environ), hub, instance or secrets.token_hex(3), dev)


def revalidate_token(site: Site) -> str:
    """ISR_REVALIDATE_TOKEN from the environment, else from the site's .env; "" when unset."""
    return os.environ.get(TOKEN_VARIABLE) or dotenv_values(site.root / ".env").get(TOKEN_VARIABLE) or ""
