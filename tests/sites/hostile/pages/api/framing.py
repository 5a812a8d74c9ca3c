"""Sets the header ?name= to ?value=, then sends "hi" (two bytes)."""


async def handler(request, response):
    response.set_header(request.query["name"], request.query["value"]).set_header("X-Kept", "yes").send("hi")
