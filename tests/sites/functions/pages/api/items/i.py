"""Static sibling of items/[id]: the glob "pages/api/items/[id].py" must not match it. FUNC-SOURCE-MARKER-3d7e"""


async def handler(request, response):
    response.json({"route": "items/i"})
