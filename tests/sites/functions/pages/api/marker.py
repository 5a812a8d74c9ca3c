"""Leaves a marker file named by ?id= whenever it runs, then reports the body size. FUNC-SOURCE-MARKER-3d7e"""
from pages._lib.probe import mark


async def handler(request, response):
    mark(f"marker-{request.query.get('id')}", str(len(request.body)))
    response.json({"received": len(request.body)})
