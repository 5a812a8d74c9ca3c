"""A page well over 1 KB, for compression. PAGE-SOURCE-MARKER-8f3b"""
from pages._lib.control import _log

revalidate = 60


async def get_static_props(ctx):
    _log("big")
    paragraphs = [f"Paragraph {i}: the quick brown fox jumps over the lazy dog." for i in range(120)]
    return {"props": {"paragraphs": paragraphs}}
