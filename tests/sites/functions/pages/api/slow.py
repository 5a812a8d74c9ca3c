"""Configured with 3008 MB and 60 s in isr.json. FUNC-SOURCE-MARKER-3d7e"""


async def handler(request, response):
    response.json({"slow": True})
