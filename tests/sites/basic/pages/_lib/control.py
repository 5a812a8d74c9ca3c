"""How the end-to-end tests steer and observe this site's pages.

A page logs one line per render to $RENDER_LOG (tests count renders), and reads
$ISR_CONTROL_DIR/<name>.json, written by the tests (value, revalidate, sleep, hold,
fail, pad). PAGE-SOURCE-MARKER-8f3b
"""

import asyncio
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


async def _obey(name):
    """Apply the control file: hold while "hold" is set, sleep, fail; return the control."""
    control = _control(name)
    deadline = time.time() + 30
    while control.get("hold") and time.time() < deadline:
        await asyncio.sleep(0.05)
        control = _control(name)
    if control.get("sleep"):
        await asyncio.sleep(float(control["sleep"]))
    if control.get("fail"):
        raise RuntimeError(f"controlled failure of {name}")
    return control


async def steered_props(tag, name):
    """get_static_props of the steered pages: log, obey the control file, return the props."""
    _log(f"{tag}:{name}")
    control = await _obey(name)
    value = control.get("value") or f"{name}-{time.time_ns()}"
    props = {"name": name, "value": value}
    if control.get("pad"):
        props["pad"] = (value + "-") * (int(control["pad"]) // (len(value) + 1) + 1)
    result = {"props": props}
    if control.get("revalidate") is not None:
        result["revalidate"] = control["revalidate"]
    return result
