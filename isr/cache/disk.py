"""The default backend: diskcache (SQLite in WAL mode) in the site's cache/ folder.

diskcache is synchronous, so every operation leaves the event loop as one job.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

import diskcache

from isr.cache.backend import Stored
from isr.errors import CacheError

CHANGELOG_LENGTH = 512  # writes remembered for other processes; a longer gap reloads all


class DiskBackend:
    def __init__(self, directory: str | Path, size_limit: int = 2**34) -> None:
        try:
            # One SQLite transaction per put keeps a record and its tag index together, and
            # a kill -9 mid-write rolls back to the previous record. Values stay inside
            # SQLite: diskcache keeps large ones in files, and inside an outer transaction
            # it deletes the old file before the commit, which a kill -9 turns into a
            # row pointing at nothing.
            self._cache = diskcache.Cache(
                str(directory), size_limit=size_limit, eviction_policy="none", disk_min_file_size=2**40
            )
        except Exception as exc:  # diskcache raises sqlite3 and OS errors alike
            raise CacheError(f"cannot open cache folder {directory}: {exc}") from None

    async def get(self, build_id: str, path: str) -> Stored | None:
        return await asyncio.to_thread(self._get, build_id, path)

    def _get(self, build_id: str, path: str) -> Stored | None:
        with self._cache.transact():
            raw = self._cache.get(("rec", build_id, path))
            expired = self._cache.get(("expired", build_id, path))
        return None if raw is None else (raw, expired)

    async def expire(self, build_id: str, path: str, generation: str) -> None:
        await asyncio.to_thread(self._expire, build_id, path, generation)

    def _expire(self, build_id: str, path: str, generation: str) -> None:
        with self._cache.transact():
            self._cache.set(("expired", build_id, path), generation)
            self._log_change(build_id, path)

    async def put(self, build_id: str, path: str, raw: bytes, tags: tuple[str, ...]) -> None:
        await asyncio.to_thread(self._put, build_id, path, raw, tags)

    def _put(self, build_id: str, path: str, raw: bytes, tags: tuple[str, ...]) -> None:
        with self._cache.transact():
            old: tuple[str, ...] = self._cache.get(("ptags", build_id, path), ())
            for tag in set(old) - set(tags):
                self._update_tag(build_id, tag, path, add=False)
            for tag in set(tags) - set(old):
                self._update_tag(build_id, tag, path, add=True)
            self._cache.set(("ptags", build_id, path), tuple(tags))
            self._cache.set(("rec", build_id, path), raw)
            self._log_change(build_id, path)

    def _log_change(self, build_id: str, path: str) -> None:
        """Count the write and remember its path, so other processes drop their copy."""
        seq = self._cache.incr(("seq", build_id, ""), default=0)
        log: list[tuple[int, str]] = self._cache.get(("log", build_id, ""), [])
        log.append((seq, path))
        self._cache.set(("log", build_id, ""), log[-CHANGELOG_LENGTH:])

    async def changes(self, build_id: str, since: int) -> tuple[int, list[str] | None]:
        return await asyncio.to_thread(self._changes, build_id, since)

    def _changes(self, build_id: str, since: int) -> tuple[int, list[str] | None]:
        seq: int = self._cache.get(("seq", build_id, ""), 0)
        if seq == since:
            return seq, []
        log: list[tuple[int, str]] = self._cache.get(("log", build_id, ""), [])
        if seq < since or not log or log[0][0] > since + 1:
            return seq, None
        return seq, [path for n, path in log if n > since]

    def _update_tag(self, build_id: str, tag: str, path: str, add: bool) -> None:
        key = ("tag", build_id, tag)
        paths: set[str] = self._cache.get(key, set())
        if add:
            paths.add(path)
        else:
            paths.discard(path)
        self._cache.set(key, paths)

    async def acquire_lease(self, build_id: str, path: str, ttl: float) -> str | None:
        return await asyncio.to_thread(self._acquire, ("lease", build_id, path), ttl)

    def _acquire(self, key: tuple[str, ...], ttl: float) -> str | None:
        """The lease names its process: one left by a process that died is taken over.

        The disk cache is one machine's, so a pid says for sure whether the holder lives.
        """
        token = f"{os.getpid()}:{secrets.token_hex(8)}"
        with self._cache.transact():
            holder = self._cache.get(key)
            if holder is not None and _alive(holder):
                return None
            self._cache.set(key, token, expire=ttl)
        return token

    async def release_lease(self, build_id: str, path: str, token: str) -> None:
        await asyncio.to_thread(self._release, ("lease", build_id, path), token)

    def _release(self, key: tuple[str, ...], token: str) -> None:
        with self._cache.transact():
            if self._cache.get(key) == token:
                self._cache.delete(key)

    async def paths_with_tag(self, build_id: str, tag: str) -> list[str]:
        paths: set[str] = await asyncio.to_thread(self._cache.get, ("tag", build_id, tag), set())
        return sorted(paths)

    async def get_static_paths(self, build_id: str, page: str) -> list[str] | None:
        return await asyncio.to_thread(self._cache.get, ("paths", build_id, page))

    async def put_static_paths(self, build_id: str, page: str, paths: list[str]) -> None:
        await asyncio.to_thread(self._cache.set, ("paths", build_id, page), list(paths))

    async def drop_other_builds(self, build_id: str) -> int:
        return await asyncio.to_thread(self._drop_other_builds, build_id)

    def _drop_other_builds(self, build_id: str) -> int:
        old = [k for k in self._cache.iterkeys() if _build_of(k) not in (None, build_id)]
        for key in old:
            self._cache.delete(key)
        return len(old)

    async def close(self) -> None:
        await asyncio.to_thread(self._cache.close)


def _alive(token: str) -> bool:
    pid = int(token.partition(":")[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True


def _build_of(key: Any) -> str | None:
    return key[1] if isinstance(key, tuple) and len(key) == 3 else None
