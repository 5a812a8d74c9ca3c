"""Regenerated on demand only, by /api/webhook, in the same bundle as the webhook."""
import asyncio
import time

revalidate = False


async def get_static_props(ctx):
    await asyncio.sleep(0.2)
    return {"props": {"at": time.time()}}
