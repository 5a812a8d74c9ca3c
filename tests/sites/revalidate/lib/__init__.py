"""Shared code of the revalidation test site: render log and control files set by tests."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def log_render(tag: str) -> None:
    """One line per render in $RENDER_LOG, so tests count regenerations."""
    with open(os.environ["RENDER_LOG"], "a", encoding="utf-8") as f:
        f.write(f"{tag}\t{time.time():.3f}\n")


def control(name: str) -> dict[str, Any]:
    """$ISR_CONTROL_DIR/<name>.json as written by the test, {} when absent."""
    try:
        with open(os.path.join(os.environ["ISR_CONTROL_DIR"], name + ".json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
