"""Dynamic API route; isr.json gives it 512 MB (a glob with literal brackets). FUNC-SOURCE-MARKER-3d7e"""


async def handler(request, response):
    response.json({"route": "items/[id]", "id": request.query.get("id"), "query": request.query})
