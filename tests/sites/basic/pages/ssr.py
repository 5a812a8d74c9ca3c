"""Server-side rendered on every request. PAGE-SOURCE-MARKER-8f3b"""
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



def _header(headers, name):
    for key, value in dict(headers).items():
        if key.lower() == name:
            return value
    return None


async def get_server_side_props(ctx):
    _log("ssr")
    q = ctx.query.get("q")
    if isinstance(q, list):
        q = ",".join(q)
    return {
        "props": {
            "q": q,
            "flavor": ctx.cookies.get("flavor"),
            "xtest": _header(ctx.headers, "x-test"),
            "stamp": time.time_ns(),
        }
    }
