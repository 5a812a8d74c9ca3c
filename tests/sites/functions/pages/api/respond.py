"""Every way to answer, chosen by ?mode=. FUNC-SOURCE-MARKER-3d7e"""


async def handler(request, response):
    mode = request.query.get("mode")
    if mode == "chain":
        response.status(201).set_header("X-One", "1").set_header("X-Two", "2").json({"chained": True})
    elif mode == "text":
        response.send("plain text \u00fc")
    elif mode == "bytes":
        response.set_header("Content-Type", "application/x-custom").send(b"\x00\x01\xffbin")
    elif mode == "redirect":
        response.redirect("/api/echo?from=redirect")
    elif mode == "redirect301":
        response.redirect(301, "/elsewhere")
    elif mode == "cookie":
        response.set_cookie("session", "abc123", max_age=3600, httponly=True, path="/").json({"ok": True})
    elif mode == "cache":
        response.set_header("Cache-Control", "public, max-age=60").json({"cached": True})
    elif mode == "teapot":
        response.status(418).send("short and stout")
    else:
        response.status(400).json({"unknown mode": mode})
