"""Wiring: a site, its cache and its invoker into an engine."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from isr.cache.backend import Backend
from isr.cache.disk import DiskBackend
from isr.cache.memory import MemoryCache
from isr.cache.store import RecordStore
from isr.constants import REDIS_SCHEMES, REGION_VARIABLE, TOKEN_VARIABLE
from isr.engine.engine import Engine
from isr.errors import CacheError
from isr.logs.hub import LogHub
from isr.logs.stats import Stats
from isr.logs.store import LogStore, log_folder
from isr.runtime.pool import WorkerInvoker
from isr.site.site import Site


def open_engine(
    site: Site, cache: str | None, environ: dict[str, str] | None = None, instance: str = "", dev: bool = False,
    hub: LogHub | None = None, region: str = "", backend: Backend | None = None,
) -> Engine:
    """An engine on `backend`, or else on the cache `cache` names (see open_backend), logging every invocation
    to `hub` (default: a new one on the site's log store), labelled with its instance and
    region (defaults: a random id; $ISR_REGION, else "local").

    `environ` reaches functions on top of the server's environment and .env. The cache
    sizes are the site config's (isr.json, or the CLI's overrides).
    """
    store = RecordStore(backend or open_backend(site, cache), site.build_id, MemoryCache(site.config.cache_memory))
    hub = hub or LogHub(LogStore(log_folder(site.root)), Stats())
    return Engine(site, store, WorkerInvoker(site, environ), hub, instance or new_instance(), dev, region or default_region())


def open_backend(site: Site, cache: str | None) -> Backend:
    """Redis for a redis://, rediss:// or unix:// URL (checked now: one error line at start),
    else the disk cache in that folder (default: the site's cache/ folder)."""
    if cache and urlsplit(cache).scheme in REDIS_SCHEMES:
        from isr.cache.redis import connect  # only here: redis-py adds about 7 MiB to a server process

        return connect(cache)
    if cache and "://" in cache:
        raise CacheError(f"--cache {cache}: not a folder, nor a Redis URL like redis://host:6379/0")
    return DiskBackend(Path(cache) if cache else site.root / "cache", site.config.cache_disk)


def new_instance() -> str:
    """A short random name for an instance started without --instance."""
    return secrets.token_hex(3)


def default_region() -> str:
    return os.environ.get(REGION_VARIABLE) or "local"


def revalidate_token(site: Site) -> str:
    """ISR_REVALIDATE_TOKEN from the environment, else from the site's .env; "" when unset."""
    return os.environ.get(TOKEN_VARIABLE) or dotenv_values(site.root / ".env").get(TOKEN_VARIABLE) or ""
