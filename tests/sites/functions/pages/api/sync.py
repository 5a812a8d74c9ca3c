"""A plain (sync) handler. FUNC-SOURCE-MARKER-3d7e"""


def handler(request, response):
    response.status(200).json({"sync": True, "method": request.method, "query": request.query})
