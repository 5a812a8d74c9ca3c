"""A page that reads its data (value, tags, sleep, fail) from a control file when it starts."""

import asyncio

from lib import control, log_render

revalidate = 3600


async def get_static_props(ctx):
    name = ctx.params["name"]
    data = control(name)  # read first: a slow render shows the data as of its start
    log_render(name)
    await asyncio.sleep(data.get("sleep", 0))
    if data.get("fail"):
        raise RuntimeError("the data source is down")
    return {"props": {"value": data.get("value", "none")}, "tags": data.get("tags", [])}
