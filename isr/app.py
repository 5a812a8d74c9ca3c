"""Wiring: a site, its cache and its invoker into an engine."""

from __future__ import annotations

from pathlib import Path

from isr.cache.disk import DiskBackend
from isr.cache.memory import MemoryCache
from isr.cache.store import RecordStore
from isr.constants import MEMORY_CACHE_BYTES
from isr.engine.engine import Engine
from isr.runtime.pool import WorkerInvoker
from isr.site.site import Site


def open_engine(site: Site, cache: str | None) -> Engine:
    """An engine on the disk cache in `cache` (default: the site's cache/ folder)."""
    backend = DiskBackend(Path(cache) if cache else site.root / "cache")
    store = RecordStore(backend, site.build_id, MemoryCache(MEMORY_CACHE_BYTES))
    return Engine(site, store, WorkerInvoker(site))
