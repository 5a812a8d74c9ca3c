"""How the functions test site talks to the tests: files, never HTTP. FUNC-SOURCE-MARKER-3d7e

- log(tag): one line "<tag>\t<time>" appended to $RENDER_LOG per invocation;
- control(name): $ISR_CONTROL_DIR/<name>.json written by the tests ({} when absent);
- mark(name, text): $ISR_CONTROL_DIR/mark-<name> (proof that a function ran, and its pid).
"""
import asyncio
import json
import os
import time


def log(tag):
    path = os.environ.get("RENDER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{tag}\t{time.time():.3f}\n")


def control(name):
    folder = os.environ.get("ISR_CONTROL_DIR")
    if not folder:
        return {}
    try:
        with open(os.path.join(folder, name + ".json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def mark(name, text=""):
    folder = os.environ["ISR_CONTROL_DIR"]
    tmp = os.path.join(folder, f".mark-{name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, os.path.join(folder, f"mark-{name}"))


async def hold(name, limit=8.0):
    """Wait while the control file `name` says {"hold": true} (at most `limit` seconds)."""
    deadline = time.monotonic() + limit
    while control(name).get("hold") and time.monotonic() < deadline:
        await asyncio.sleep(0.02)

