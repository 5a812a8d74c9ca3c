"""The storage interface the engine needs; the disk backend implements it for one
machine, the Redis backend for many.

Backends store record bytes (`Record.to_bytes`) and never look inside them beyond
the path, generation, start time and tags they are given, so a record is written
and read as one value.

Freshness on demand is by tag marks, as Next.js does it: revalidating a tag records
when it happened, and every generation of a page carrying the tag that *started*
before then is stale. A regeneration already running when the tag is revalidated
may have read the old data, and what it stores is stale too: no revalidation is lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from isr.cache.layout import Served
from isr.cache.spill import SpillFiles


@dataclass(frozen=True)
class Stored:
    """What a write stores next to the record bytes."""

    path: str
    generation: str
    started_at: float  # Unix time the generation's invocation began (before it read any data)
    tags: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True)
class Change:
    """One write another process may hold an older copy of."""

    seq: int
    kind: Literal["path", "tag"]
    key: str  # the path, or the tag
    value: str | float  # the path's new generation, or the tag's mark time


@dataclass
class Health:
    """Whether the backend answers now, and how often it stopped answering (a metric)."""

    available: bool = True
    outages: int = 0


class Backend(Protocol):
    health: Health
    spill: SpillFiles | None  # where responses get_served read are spilled to (the disk cache's)

    def get(self, build_id: str, path: str) -> Awaitable[bytes | None]:
        """The stored record of a path, or None (a coroutine, or a future: the disk backend
        hands back its batch's future itself, one await less on the path of every read)."""

    def get_served(self, build_id: str, path: str, variant: str, coding: str) -> Awaitable[Served | None]:
        """One variant's response in a coding (identity if not stored in it) out of the stored
        record of a path, without decoding the rest (layout.py); None if none is stored."""

    async def put(self, build_id: str, records: list[Stored]) -> list[bool]:
        """Store records, each replacing its path's atomically (readers see the old or
        the new one, never a mix); fenced: a record never replaces one that started later.
        Per record, whether it was stored."""

    async def touch(self, build_id: str, paths: Collection[str]) -> None:
        """These paths were served from memory (the backend counts its own reads itself):
        the least recently used records are evicted first."""

    async def mark_tag(self, build_id: str, tag: str, at: float) -> list[str]:
        """Mark every generation carrying the tag that started before `at` stale; the stored
        paths it marked."""

    async def tag_marks(self, build_id: str) -> dict[str, float]:
        """Every tag of the build and when it was last revalidated."""

    async def changes(self, build_id: str, since: int) -> tuple[int, list[Change] | None]:
        """The change counter now, and the changes after `since` (None: too old to list)."""

    async def changed(self, build_id: str, poll: float) -> None:
        """Return once another process may have written to the build: a backend told of
        writes (Redis pub/sub) returns on the next one, one that is not (disk) after `poll` s."""

    async def acquire_lease(self, build_id: str, path: str, ttl: float) -> str | None:
        """Take the right to regenerate a path for `ttl` seconds; a token, or None if held."""

    async def renew_lease(self, build_id: str, path: str, token: str, ttl: float) -> bool:
        """Extend our lease to `ttl` seconds from now; False if it is not ours any more."""

    async def release_lease(self, build_id: str, path: str, token: str) -> None:
        """Give a lease back, only if it is still ours."""

    async def get_static_paths(self, build_id: str, page: str) -> list[str] | None:
        """The paths `get_static_paths` returned for a route at build time."""

    async def put_static_paths(self, build_id: str, page: str, paths: list[str]) -> None: ...

    async def announce(self, build_id: str, instance: str) -> None:
        """A server of this build is alive (its build is in use and must not be dropped)."""

    async def builds_in_use(self) -> set[str]:
        """The builds live servers announced lately."""

    async def report(self, server: str, values: dict[str, Any]) -> None:
        """Publish one server process's counters, for every instance's dashboard to add up."""

    async def reports(self) -> dict[str, dict[str, Any]]:
        """The counters every server that is alive published last, by server."""

    async def drop_builds(self, keep: Collection[str]) -> int:
        """Delete everything builds not in `keep` stored; the number of records deleted."""

    async def usage(self, build_id: str) -> tuple[int, int]:
        """Records of the build, and bytes the whole cache takes."""

    async def close(self) -> None: ...


# A backend that cannot be reached raises isr.errors.CacheUnavailable: the store then
# serves what memory holds, renders a miss locally and keeps the result in memory only.
