"""The bytes of a stored record: a JSON header, then each variant's responses ready to send.

For each variant (HTML, then JSON) and each stored coding, the head of its response
(status line, fixed headers, Content-Length) comes right before the body. A page read
from disk that memory does not keep is then served from its bytes as they are
(`served`): no record is decoded and no header is formatted on the event loop. The disk
cache's read process picks that response out (it imports nothing else of isr, to start
fast); record.py makes and decodes whole records.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from isr.engine.freshness import stale_at
from isr.errors import CacheError

MAGIC = b"isr3"  # the layout's version: bytes of another layout are no record to this isr
VARIANTS = ("html", "data")
IDENTITY = "identity"
_PREFIX = struct.Struct(">4sI")  # magic, header size


@dataclass(slots=True)
class Served:
    """One variant's response in one coding, as stored, with what decides its freshness."""

    status: int
    head: bytes | memoryview  # status line and fixed headers, each line ending in CRLF, no blank line
    body: bytes | memoryview
    generated_at: float
    revalidate: float | bool
    started_at: float
    tags: list[str]
    generation: str = ""  # of the record it is a response of ("" where it is not needed: read back from a spill)
    spilled: int | None = None  # where the disk cache's read process spilled it too (spill.py)

    @property
    def stale_at(self) -> float:
        return stale_at(self.generated_at, self.revalidate)


def pack(header: dict[str, Any], blobs: list[bytes]) -> bytes:
    """A record's bytes: `header` names each variant's codings with their head and body
    sizes ("sizes", "heads"), in the order of `blobs` (head, body, head, body, ...)."""
    meta = orjson.dumps(header)
    return _PREFIX.pack(MAGIC, len(meta)) + meta + b"".join(blobs)


def unpack(raw: bytes | memoryview) -> tuple[dict[str, Any], int]:
    """A record's header and the offset of its first head."""
    if len(raw) < _PREFIX.size:
        raise CacheError("a cache record is truncated")
    magic, size = _PREFIX.unpack_from(raw)
    if magic != MAGIC:
        raise CacheError("a cache record of another isr version")
    try:
        header: dict[str, Any] = orjson.loads(raw[_PREFIX.size : _PREFIX.size + size])
    except orjson.JSONDecodeError:
        raise CacheError("a cache record's header is damaged") from None
    return header, _PREFIX.size + size


def responses(header: dict[str, Any], offset: int) -> Iterator[tuple[str, str, int, int, int]]:
    """Every stored response in order: variant, coding, its head's offset, head size, body size."""
    for name in VARIANTS:
        part = header[name]
        for (coding, body), head in zip(part["sizes"].items(), part["heads"], strict=True):
            yield name, coding, offset, head, body
            offset += head + body


def _locate(header: dict[str, Any], offset: int, variant: str, coding: str) -> tuple[int, int, int]:
    """Where a variant's response in a coding lies: its head's offset, head size, body size
    (the identity response if the variant is not stored in that coding)."""
    if coding not in header[variant]["sizes"]:
        coding = IDENTITY
    for name, stored, start, head, body in responses(header, offset):
        if name == variant and stored == coding:
            return start, head, body
    raise CacheError(f"a cache record has no {variant} variant in {coding}")


def served(raw: bytes | memoryview, variant: str, coding: str) -> Served:
    """A variant's response in a coding, sliced out of a record's bytes."""
    header, offset = unpack(raw)
    start, head, body = _locate(header, offset, variant, coding)
    return Served(
        header[variant]["status"], raw[start : start + head], raw[start + head : start + head + body],
        header["generated_at"], header["revalidate"], header["started_at"], header["tags"], header["generation"],
    )
