"""ISR page, revalidate 1; prints two lines per render. $ISR_CONTROL_DIR/isr-<name>.json
{"mode": "raise"} makes get_static_props raise (a failed regeneration)."""

import sys
import time

from pages._lib.ctl import control

revalidate = 1


def get_static_props(ctx):
    name = ctx.params["name"]
    print(f"isr-print:{name}")
    print(f"isr-stderr:{name}", file=sys.stderr)
    if control(f"isr-{name}").get("mode") == "raise":
        raise RuntimeError(f"isr page {name} failed on purpose")
    return {"props": {"name": name, "value": f"{name}-{time.time_ns()}"}}
