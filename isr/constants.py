"""Names and defaults shared across isr, each with its unit."""

from __future__ import annotations

from typing import Final

# Headers isr sets (lower case, as aiohttp compares them case-insensitively).
CACHE_STATE: Final = "x-isr-cache"
GENERATION: Final = "x-isr-generation"
ERROR_CODE: Final = "x-isr-error-code"

READ_METHODS: Final = frozenset({"GET", "HEAD"})  # what a page answers

HIT: Final = "HIT"
STALE: Final = "STALE"
MISS: Final = "MISS"

NO_STORE: Final = "private, no-cache, no-store, max-age=0, must-revalidate"
ONE_YEAR: Final = 31_536_000  # seconds; Next.js' default expireTime

REDIS_SCHEMES: Final = ("redis", "rediss", "unix")  # a --cache URL with one of these names a Redis

DEFAULT_MEMORY_MB: Final = 1024
DEFAULT_MAX_DURATION_S: Final = 10.0
DEFAULT_REVALIDATE_S: Final = 60
DEFAULT_MAX_CONCURRENCY: Final = 4  # worker processes per bundle, Vercel's maxConcurrency
DEFAULT_BODY_LIMIT: Final = 4_718_592  # bytes: 4.5 MB, Vercel's request and response limit

COMPRESS_MIN_BYTES: Final = 1024  # bodies above this get stored br and gzip variants
DEFAULT_CACHE_MEMORY: Final = 256 * 2**20  # bytes of cached pages the server process keeps
DEFAULT_CACHE_DISK: Final = 4 * 2**30  # bytes of the disk cache before LRU eviction

BACKOFF_FIRST_S: Final = 1.0  # first retry delay after a failed regeneration
BACKOFF_MAX_S: Final = 10.0

DATA_PREFIX: Final = "/_isr/data/"
DATA_SCRIPT_ID: Final = "__ISR_DATA__"

TOKEN_VARIABLE: Final = "ISR_REVALIDATE_TOKEN"
URL_VARIABLE: Final = "ISR_URL"
INTERNAL_TOKEN_VARIABLE: Final = "ISR_INTERNAL_TOKEN"  # lets a server's own functions revalidate
REGION_VARIABLE: Final = "ISR_REGION"  # the default of `isr serve --region`
DEFAULT_URL: Final = "http://127.0.0.1:3000"
# How often a record's use is told to the backend's LRU at most (a disk read's use stamp, a
# memory HIT's touch): the eviction order needs minutes, not every request.
USE_STAMP_EVERY_S: Final = 300.0
