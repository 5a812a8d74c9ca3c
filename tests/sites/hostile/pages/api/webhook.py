"""A webhook that waits for the regeneration it asks for, in the bundle that regenerates it."""
from isr import revalidate


async def handler(request, response):
    response.json(await revalidate("/target"))
