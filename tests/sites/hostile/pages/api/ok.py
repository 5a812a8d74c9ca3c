async def handler(request, response):
    response.json({"ok": True})
