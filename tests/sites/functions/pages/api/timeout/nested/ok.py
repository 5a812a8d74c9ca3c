"""Nested below timeout/: the glob "pages/api/timeout/*.py" must not reach it. FUNC-SOURCE-MARKER-3d7e"""


async def handler(request, response):
    response.json({"nested": True})
