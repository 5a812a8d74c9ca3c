"""isr: Incremental Static Regeneration for Python sites.

A page author imports from `isr` only.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
