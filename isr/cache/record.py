"""A generation record: both variants of one page generation, ready to send.

Everything a response needs (compressed bodies, ETags, the serialized head of each
response) is computed when the generation is made, so serving a HIT only picks prebuilt
bytes. A record is stored as one value (`to_bytes`, laid out by layout.py, heads
included), so HTML and JSON can never come from different generations; decoded into
memory, it makes a coding's head again on its first response (memory keeps the heads
of the codings served only).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from typing import Any, Literal

from isr.cache import layout
from isr.cache.compression import Encoding, compress
from isr.constants import GENERATION, NO_STORE, ONE_YEAR
from isr.engine.freshness import stale_at
from isr.site.config import Revalidate

Outcome = Literal["page", "not_found", "redirect"]
HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json"


@dataclass(slots=True)  # slots: fewer cache lines a HIT touches, on a page not served lately
class Variant:
    """One representation (HTML or JSON) in every stored content coding."""

    status: int
    content_type: str
    bodies: dict[Encoding, bytes]
    etags: dict[Encoding, str]
    location: str | None = None
    cache_control: str = NO_STORE
    generation: str | None = None
    encodings: tuple[Encoding, ...] = field(init=False, repr=False, compare=False)  # of bodies, for choose()
    # Per coding, in `encodings` order, the head of its responses and its body, flat in one
    # tuple: a HIT reads this one object, where dicts of heads and of bodies cost it four more
    # cache misses on a page not served lately. A head is None until its coding's first
    # response (see `head`): a record read from disk is usually served in one coding only.
    _wire: tuple[bytes | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codings = tuple(self.bodies)
        self.encodings = _ENCODINGS.setdefault(codings, codings)  # shared: a HIT's choice of coding reads it
        self._wire = _unbuilt(self.bodies)

    def prepare(self, cache_control: str, generation: str | None) -> None:
        self.cache_control = cache_control
        self.generation = generation
        self._wire = _unbuilt(self.bodies)

    def response(self, coding: Encoding) -> tuple[bytes, bytes]:
        """The head (see `head`) and the body of every response of this variant in this coding."""
        at = 2 * self.encodings.index(coding)
        head = self._wire[at]
        if head is None:
            lines = [f"HTTP/1.1 {self.status} {_reason(self.status)}\r\n"]
            lines += [f"{name}: {value}\r\n" for name, value in self.headers(coding).items()]
            lines.append(f"Content-Length: {len(self.bodies[coding])}\r\n")
            head = "".join(lines).encode()  # UTF-8, as aiohttp sends headers
            self._wire = (*self._wire[:at], head, *self._wire[at + 1 :])
        return head, self._wire[at + 1]  # type: ignore[return-value]

    def head(self, coding: Encoding) -> bytes:
        """The start of every HTTP/1.1 response of this variant in this coding: status line,
        fixed headers and Content-Length, each line ending in CRLF, but not the blank line."""
        return self.response(coding)[0]

    def headers(self, coding: Encoding) -> dict[str, str]:
        """The headers every response of this variant in this coding carries."""
        headers = {"Content-Type": self.content_type, "Cache-Control": self.cache_control, "ETag": self.etags[coding]}
        if len(self.bodies) > 1:
            headers["Vary"] = "Accept-Encoding"
        if coding != "identity":
            headers["Content-Encoding"] = coding
        if self.generation:
            headers[GENERATION] = self.generation
        if self.location:
            headers["Location"] = self.location
        return headers


_ENCODINGS: dict[tuple[Encoding, ...], tuple[Encoding, ...]] = {}  # each list of codings once (a handful)


def _unbuilt(bodies: dict[Encoding, bytes]) -> tuple[bytes | None, ...]:
    """A variant's `_wire` with no head built yet."""
    return tuple(part for body in bodies.values() for part in (None, body))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status Python has no name for: the reason phrase may be empty
        return ""


def make_variant(status: int, content_type: str, body: bytes, location: str | None = None, best: bool = True) -> Variant:
    bodies = compress(body, best)
    tag = hashlib.blake2b(body, digest_size=10).hexdigest()
    etags: dict[Encoding, str] = {c: f'"{tag}"' if c == "identity" else f'"{tag}-{c}"' for c in bodies}
    return Variant(status, content_type, bodies, etags, location)


@lru_cache(maxsize=256)  # a site has a few revalidate values; decoding a record asks for one each time
def cache_control(revalidate: Revalidate) -> str:
    if revalidate is False:
        return f"s-maxage={ONE_YEAR}, stale-while-revalidate"
    return f"s-maxage={revalidate}, stale-while-revalidate={ONE_YEAR - int(revalidate)}"


@dataclass(slots=True)
class Record:
    path: str
    page: str
    build_id: str
    generation: str
    started_at: float  # Unix time its invocation began, before it read any data (tag marks compare with it)
    generated_at: float  # Unix time
    revalidate: Revalidate
    tags: tuple[str, ...]
    outcome: Outcome
    html: Variant
    data: Variant

    stale_at: float = field(init=False)  # Unix time; 0 once marked stale on demand (tags)
    touch_due: float = field(init=False, default=0.0)  # when serving it next tells the disk LRU
    uses: int = field(init=False, default=0)  # served from memory, counted for MemoryCache.admits
    aged: int = field(init=False, default=0)  # the MemoryCache age `uses` was last halved to
    referenced: bool = field(init=False, default=False)  # used since MemoryCache's clock last came round to it
    size: int = field(init=False)  # bytes it takes in memory, all variants and headers included

    def __post_init__(self) -> None:
        self.tags = tuple(dict.fromkeys(self.tags))  # each once: the memory's tag index counts them
        control = cache_control(self.revalidate)
        self.html.prepare(control, self.generation)
        self.data.prepare(control, self.generation)
        self.stale_at = stale_at(self.generated_at, self.revalidate)
        self.size = RECORD_OVERHEAD + _variant_size(self.html) + _variant_size(self.data) + len(self.path) + sum(map(len, self.tags))

    def expire(self) -> None:
        """Stale from now on, whatever its revalidate: the next request regenerates it."""
        self.stale_at = 0.0

    def to_bytes(self) -> bytes:
        """The stored bytes (layout.py): each variant's responses, heads included, ready to send."""
        blobs: list[bytes] = []
        meta = {
            "path": self.path, "page": self.page, "build_id": self.build_id,
            "generation": self.generation, "started_at": self.started_at, "generated_at": self.generated_at,
            "revalidate": self.revalidate, "tags": self.tags, "outcome": self.outcome,
            "html": _variant_meta(self.html, blobs), "data": _variant_meta(self.data, blobs),
        }
        return layout.pack(meta, blobs)

    @staticmethod
    def header_of(raw: bytes) -> dict[str, Any]:
        """A stored record's metadata (path, generation, tags, variants' statuses and sizes),
        reading only its header."""
        return layout.unpack(raw)[0]

    @classmethod
    def status_of(cls, raw: bytes) -> int:
        """The HTML status of a stored record."""
        return int(cls.header_of(raw)["html"]["status"])

    @classmethod
    def from_bytes(cls, raw: bytes) -> Record:
        """A record with its variants' bodies; their heads are made again on first use (memory
        keeps those of the codings served only)."""
        meta, offset = layout.unpack(raw)
        bodies: dict[str, dict[Encoding, bytes]] = {"html": {}, "data": {}}
        for variant, coding, start, head, size in layout.responses(meta, offset):
            bodies[variant][coding] = raw[start + head : start + head + size]  # type: ignore[index]
        html, data = (_variant_from(meta[name], bodies[name]) for name in layout.VARIANTS)
        return cls(  # positional: a record is decoded for every page served from disk
            meta["path"], meta["page"], meta["build_id"], meta["generation"], meta["started_at"],
            meta["generated_at"], meta["revalidate"], tuple(meta["tags"]), meta["outcome"], html, data,
        )


# Bytes Python takes for a record beyond its bodies (objects, dicts, ETags, prebuilt
# serialized heads), measured with tracemalloc (tests/unit/test_memory.py checks it).
RECORD_OVERHEAD = 1000
VARIANT_OVERHEAD = 300
CODING_OVERHEAD = 560


def _variant_size(variant: Variant) -> int:
    bodies = variant.bodies
    location = len(variant.location or "") * (1 + len(bodies))  # in every coding's head as well
    return VARIANT_OVERHEAD + CODING_OVERHEAD * len(bodies) + sum(map(len, bodies.values())) + location


def _variant_meta(variant: Variant, blobs: list[bytes]) -> dict[str, Any]:
    heads = []
    for coding, body in variant.bodies.items():
        head = variant.head(coding)
        blobs += (head, body)
        heads.append(len(head))
    return {
        "status": variant.status, "type": variant.content_type, "location": variant.location,
        "etags": variant.etags, "sizes": {c: len(b) for c, b in variant.bodies.items()}, "heads": heads,
    }


def _variant_from(meta: dict[str, Any], bodies: dict[Encoding, bytes]) -> Variant:
    return Variant(meta["status"], meta["type"], bodies, meta["etags"], meta["location"])


def new_generation_id() -> str:
    """Opaque, unique and sortable by time."""
    return f"{time.time_ns() // 1_000_000:x}-{secrets.token_hex(4)}"


def uncached_variant(status: int, body: bytes, content_type: str = HTML_TYPE) -> Variant:
    """A response that no cache downstream may keep (fallback pages, error pages)."""
    variant = make_variant(status, content_type, body)
    variant.prepare(NO_STORE, None)
    return variant
