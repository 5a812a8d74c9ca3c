"""Content codings: bodies are compressed once, when a generation is made."""

from __future__ import annotations

import gzip
from typing import Literal

import brotli

from isr.constants import COMPRESS_MIN_BYTES

Encoding = Literal["identity", "br", "gzip"]
PREFERENCE: tuple[Encoding, ...] = ("br", "gzip")
ALL_CODINGS: tuple[Encoding, ...] = ("identity", "br", "gzip")  # of a body above COMPRESS_MIN_BYTES


# Measured on the 12 KB (HTML + JSON) catalogue pages of benchmarks/item_site.py, per page:
#   brotli 11: 17.3 ms, 3,494 B   brotli 6: 0.45 ms, 4,072 B   brotli 5: 0.41 ms, 4,077 B
#   brotli 4:   0.32 ms, 4,361 B (no smaller than gzip)
#   gzip 9:     0.27 ms, 4,390 B   gzip 6:   0.26 ms, 4,390 B   gzip 4:   0.20 ms, 4,453 B
# Brotli 11 saves 14 % for 40 times the CPU of 5: at build time that is 100,000 pages x 17 ms.
# Brotli 5 is as small as 6 and cheaper; gzip 4 is 1.4 % larger than 9 for 25 % less time.
BROTLI_QUALITY = 5
GZIP_LEVEL = 4
FAST_BROTLI_QUALITY = 3  # per-request responses (SSR): 0.16 ms, 4,537 B above
FAST_GZIP_LEVEL = 1  # 0.16 ms, 4,672 B


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
