"""isr: Incremental Static Regeneration for Python sites.

A page author imports from `isr` only. The client is imported on first use, so that a
process of isr's own that needs none of it (the disk cache's read process) starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from isr.client import RevalidateError, revalidate

__all__ = ["RevalidateError", "__version__", "revalidate"]


def __getattr__(name: str) -> Any:
    if name in ("RevalidateError", "revalidate"):
        from isr import client

        return getattr(client, name)
    raise AttributeError(f"module 'isr' has no attribute {name!r}")
