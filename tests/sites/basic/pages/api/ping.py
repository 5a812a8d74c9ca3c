"""An API function (listed by `isr routes`). PAGE-SOURCE-MARKER-8f3b"""


async def handler(request, response):
    response.status(200).json({"pong": True})
