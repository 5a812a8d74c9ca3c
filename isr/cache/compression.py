"""Content codings: bodies are compressed once, when a generation is made."""

from __future__ import annotations

import gzip
from typing import Literal

import brotli

from isr.constants import COMPRESS_MIN_BYTES

Encoding = Literal["identity", "br", "gzip"]
PREFERENCE: tuple[Encoding, ...] = ("br", "gzip")


def compress(body: bytes, best: bool = True) -> dict[Encoding, bytes]:
    """The body in every coding worth storing; small bodies stay identity only.

    `best` spends CPU once per generation for the smallest bodies; a response made
    per request (SSR) takes the fast settings instead.
    """
    if len(body) <= COMPRESS_MIN_BYTES:
        return {"identity": body}
    small = best and len(body) < 256 * 1024
    return {
        "identity": body,
        "br": brotli.compress(body, quality=11 if small else 4),
        "gzip": gzip.compress(body, compresslevel=9 if best else 5, mtime=0),
    }


def choose(accept_encoding: str, available: tuple[Encoding, ...]) -> Encoding:
    """The best stored coding the client accepts (RFC 9110 q-values; q=0 refuses)."""
    accepted = _parse(accept_encoding)
    for coding in PREFERENCE:
        if coding in available and accepted.get(coding, accepted.get("*", 0.0)) > 0:
            return coding
    return "identity"


def _parse(header: str) -> dict[str, float]:
    accepted: dict[str, float] = {}
    for item in header.lower().split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if name:
            accepted[name.strip()] = q
    return accepted
