"""Another API function, for filters; prints the query's `tag`."""


async def handler(request, response):
    print(f"other-print:{request.query.get('tag', '-')}")
    response.json({"other": True})
