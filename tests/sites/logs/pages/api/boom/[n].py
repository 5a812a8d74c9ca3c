"""Always raises, after printing a line: a 500 FUNCTION_INVOCATION_FAILED per call."""


async def handler(request, response):
    print(f"boom-before:{request.query['n']}")
    raise RuntimeError(f"boom {request.query['n']} on purpose")
