"""Bench page for the STALE burst: a one-second revalidate and a slow data source.

`get_static_props` sleeps for $ISR_BENCH_STALE_SLEEP seconds (0.5 when unset), like a
slow API, so once the page is past its revalidate a burst of requests finds a
regeneration running and gets the stale generation. benchmarks/hit_path.py sets the
variable so that one regeneration outlasts the whole measured run.
"""

import os
import time

revalidate = 1


def get_static_props(ctx):
    time.sleep(float(os.environ.get("ISR_BENCH_STALE_SLEEP", "0.5")))
    return {
        "props": {
            "title": "Stale bench page",
            "rendered_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "items": [{"id": i, "name": f"Item {i}", "price": 10 + i} for i in range(12)],
        }
    }
