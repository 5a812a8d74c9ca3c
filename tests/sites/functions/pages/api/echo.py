"""Echoes what the handler received. FUNC-SOURCE-MARKER-3d7e"""
from pages._lib.probe import log


async def handler(request, response):
    log(f"echo:{request.method}")
    body = request.body
    shown = {"hex": body.hex()} if isinstance(body, (bytes, bytearray)) else body
    response.status(200).json({
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": dict(request.headers),
        "cookies": dict(request.cookies),
        "body_type": type(body).__name__,
        "body": shown,
    })
