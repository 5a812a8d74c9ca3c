"""A sync handler that raises. FUNC-SOURCE-MARKER-3d7e"""


def handler(request, response):
    raise ValueError("sync handler failed on purpose")  # FUNC-SOURCE-MARKER-3d7e
