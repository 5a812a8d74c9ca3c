"""isr: Incremental Static Regeneration for Python sites.

A page author imports from `isr` only.
"""

__version__ = "0.1.0"

from isr.client import RevalidateError, revalidate  # noqa: E402

__all__ = ["RevalidateError", "__version__", "revalidate"]
