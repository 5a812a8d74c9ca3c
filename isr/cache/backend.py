"""The storage interface the engine needs; the disk backend implements it (a shared
Redis backend is meant to, for many machines).

Backends store record bytes (`Record.to_bytes`) and never look inside them beyond
the path and tags they are given, so a record is written and read as one value.
"""

from __future__ import annotations

from typing import Protocol

Stored = tuple[bytes, str | None]  # record bytes, and the generation last marked stale


class Backend(Protocol):
    async def get(self, build_id: str, path: str) -> Stored | None:
        """The stored record of a path, or None."""

    async def expire(self, build_id: str, path: str, generation: str) -> None:
        """Mark one generation of a path stale (a newer generation is never affected)."""

    async def put(self, build_id: str, path: str, raw: bytes, tags: tuple[str, ...]) -> None:
        """Replace a path's record atomically: readers see the old or the new one, never a mix."""

    async def changes(self, build_id: str, since: int) -> tuple[int, list[str] | None]:
        """The change counter now, and the paths written after `since` (None: too many to list)."""

    async def acquire_lease(self, build_id: str, path: str, ttl: float) -> str | None:
        """Take the right to regenerate a path for `ttl` seconds; a token, or None if held."""

    async def release_lease(self, build_id: str, path: str, token: str) -> None:
        """Give a lease back, only if it is still ours."""

    async def paths_with_tag(self, build_id: str, tag: str) -> list[str]:
        """Every cached path whose latest generation carries the tag."""

    async def get_static_paths(self, build_id: str, page: str) -> list[str] | None:
        """The paths `get_static_paths` returned for a route at build time."""

    async def put_static_paths(self, build_id: str, page: str, paths: list[str]) -> None: ...

    async def drop_other_builds(self, build_id: str) -> int:
        """Delete what older builds stored; the number of entries deleted."""

    async def close(self) -> None: ...
