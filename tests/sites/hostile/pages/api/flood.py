"""Prints "tag:<?tag=>", ?lines= lines of ?size= characters, then ?huge= characters without a newline."""


async def handler(request, response):
    print(f"tag:{request.query['tag']}")
    lines, size, huge = (int(request.query.get(k, 0)) for k in ("lines", "size", "huge"))
    for i in range(lines):
        print(f"{i:06d}" + "x" * max(size - 6, 0))
    if huge:
        print("h" * huge, end="")
    response.json({"printed": lines})
