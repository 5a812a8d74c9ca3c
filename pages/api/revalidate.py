"""A CMS webhook: checks its own secret, then regenerates what changed.

    curl -X POST 'http://127.0.0.1:3000/api/revalidate?secret=change-me' \\
         -H 'Content-Type: application/json' -d '{"slug": "hello-isr"}'

The secret comes from WEBHOOK_SECRET (put it in .env); "change-me" otherwise.
"""

import hmac
import os

from isr import RevalidateError, revalidate


async def handler(request, response):
    secret = os.environ.get("WEBHOOK_SECRET", "change-me")
    if not hmac.compare_digest(str(request.query.get("secret", "")), secret):
        response.status(401).json({"message": "bad secret"})
        return
    if request.method != "POST":
        response.status(405).set_header("Allow", "POST").json({"message": "use POST"})
        return
    body = request.body if isinstance(request.body, dict) else {}
    paths = [f"/blog/{body['slug']}"] if isinstance(body.get("slug"), str) else []
    try:
        report = await revalidate(*paths, tags=["blog"])
    except RevalidateError as exc:
        response.status(500).json({"message": str(exc)})
        return
    response.json(report)
