"""An API function that does nothing but answer: the invocation benchmark's subject."""


def handler(request, response):
    response.send("ok")
