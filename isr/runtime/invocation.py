"""The one interface through which the engine runs user code.

"Run function F of the site for this event, under these limits; return its value or
raise a FunctionError." The engine never imports or calls a page module itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from isr.site.config import FunctionConfig

Kind = Literal["render", "regenerate", "fallback", "not_found", "ssr", "api", "paths"]


@dataclass(frozen=True)
class Invocation:
    file: str  # the function's file relative to the site, e.g. "pages/blog/[slug].py"
    kind: Kind
    event: dict[str, Any]  # plain data: it crosses process boundaries
    limits: FunctionConfig


@dataclass
class Result:
    value: Any
    logs: list[str] = field(default_factory=list)  # what the function printed
    duration_ms: float = 0.0
    memory_mb: float = 0.0


class Invoker(Protocol):
    async def invoke(self, invocation: Invocation) -> Result:
        """Run it; raises a FunctionError subclass on timeout, crash, exception, …"""

    def prewarm(self) -> None:
        """Start what the first invocations need (worker processes) ahead of them."""

    async def close(self) -> None: ...
