"""Control files written by the tests: $ISR_CONTROL_DIR/<name>.json ({} when absent)."""

import json
import os


def control(name):
    folder = os.environ.get("ISR_CONTROL_DIR")
    if not folder:
        return {}
    try:
        with open(os.path.join(folder, name + ".json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
