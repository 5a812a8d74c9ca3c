"""Content codings: bodies are compressed once, when a generation is made."""

from __future__ import annotations

import gzip
from typing import Literal

import brotli

from isr.constants import COMPRESS_MIN_BYTES

Encoding = Literal["identity", "br", "gzip"]
PREFERENCE: tuple[Encoding, ...] = ("br", "gzip")


# Measured on 8 KB catalogue pages and their 4 KB JSON (benchmarks/item_site.py): brotli 11
# makes them 13 % smaller than 6 for 50 times the CPU (16.6 ms a page against 0.31); 9 is
# no smaller than 6 and 28 times slower; 4 is 8 % larger for 30 % less time. gzip 9 is no
# smaller than 6 here. Generation time is build time (100,000 pages) and worker time.
BROTLI_QUALITY = 6
GZIP_LEVEL = 6
FAST_BROTLI_QUALITY = 4  # per-request responses (SSR)
FAST_GZIP_LEVEL = 5


def compress(body: bytes, best: bool = True) -> dict[Encoding, bytes]:
    """The body in every coding worth storing; small bodies stay identity only.

    `best` is for what is generated once and stored; a response made per request (SSR)
    takes the fast settings instead.
    """
    if len(body) <= COMPRESS_MIN_BYTES:
        return {"identity": body}
    return {
        "identity": body,
        "br": brotli.compress(body, quality=BROTLI_QUALITY if best else FAST_BROTLI_QUALITY),
        "gzip": gzip.compress(body, compresslevel=GZIP_LEVEL if best else FAST_GZIP_LEVEL, mtime=0),
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
