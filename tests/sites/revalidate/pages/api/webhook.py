"""The webhook pattern: check our own secret, then revalidate what changed."""

from isr import RevalidateError, revalidate


async def handler(request, response):
    if request.query.get("secret") != "hook-secret":
        response.status(401).json({"message": "bad secret"})
        return
    try:
        report = await revalidate(*request.body.get("paths", []), tags=request.body.get("tags", []))
    except RevalidateError as exc:
        response.status(500).json({"message": str(exc)})
        return
    response.json(report)
