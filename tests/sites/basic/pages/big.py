"""A page well over 1 KB, for compression. PAGE-SOURCE-MARKER-8f3b"""
import json
import os
import time


def _log(tag):
    """Append one line per render to $RENDER_LOG so tests can count renders."""
    log = os.environ.get("RENDER_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{tag}\t{time.time():.3f}\n")


def _control(name):
    """Read $ISR_CONTROL_DIR/<name>.json (written by the tests), {} when absent."""
    folder = os.environ.get("ISR_CONTROL_DIR")
    if not folder:
        return {}
    try:
        with open(os.path.join(folder, name + ".json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


revalidate = 60


async def get_static_props(ctx):
    _log("big")
    paragraphs = [f"Paragraph {i}: the quick brown fox jumps over the lazy dog." for i in range(120)]
    return {"props": {"paragraphs": paragraphs}}
