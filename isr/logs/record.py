"""One log record: what a single invocation (or a served STALE request) did."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LINES = 256  # printed lines kept per record (Vercel keeps 256 per request)
MAX_LINE = 4096  # characters kept per line


@dataclass
class LogRecord:
    function: str  # the function's file, e.g. "pages/blog/[slug].py"
    path: str  # the request path
    kind: str  # render | regenerate | ssr | api | paths
    status: int
    duration_ms: float
    memory_mb: float = 0.0
    cache: str | None = None  # HIT | STALE | MISS for served requests
    error: str | None = None  # Vercel error code
    message: str | None = None  # the error's one-line message
    instance: str = ""
    region: str = ""
    lines: list[str] = field(default_factory=list)
    time: float = field(default_factory=time.time)  # Unix time the invocation ended

    def __post_init__(self) -> None:
        self.function, self.path = readable(self.function), readable(self.path)
        self.message = None if self.message is None else readable(self.message)
        self.lines = [readable(line[:MAX_LINE]) for line in self.lines[:MAX_LINES]]
        self.duration_ms = round(self.duration_ms, 3)
        self.memory_mb = round(self.memory_mb, 1)

    @property
    def is_error(self) -> bool:
        """What the error store keeps: 5xx answers and failed regenerations."""
        return self.status >= 500 or self.error is not None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def readable(text: str) -> str:
    """Text every reader can encode: characters that are not UTF-8 (lone surrogates, which
    is how undecodable bytes arrive) become U+FFFD, here and in records stored before."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@dataclass(frozen=True)
class Filter:
    """Which records a reader wants."""

    function: str | None = None
    errors: bool = False
    since: float = 0.0  # Unix time

    def __call__(self, record: LogRecord) -> bool:
        return (
            (self.function is None or record.function == self.function)
            and (not self.errors or record.is_error)
            and record.time >= self.since
        )
