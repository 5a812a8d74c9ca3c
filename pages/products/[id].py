"""A product page: ISR with fallback = True, so a new path answers at once with a loading state."""

import asyncio
import re
from typing import Any

from pages._lib.content import generated_at, get_product

revalidate = 60
fallback = True  # first visit: the template with fallback=True, while the page renders behind it


async def get_static_paths() -> list[dict[str, str]]:
    return [{"id": "1"}]  # products 2-4 show the loading state on their first visit


async def get_static_props(ctx: Any) -> dict[str, Any]:
    # Stands in for a slow inventory service, so the loading state is visible.
    await asyncio.sleep(1)
    product_id = ctx.params["id"]
    # Only short ASCII digit strings: "²".isdigit() is true, and a huge number overflows SQLite.
    product = get_product(int(product_id)) if re.fullmatch(r"[0-9]{1,9}", product_id) else None
    if product is None:
        return {"not_found": True}
    props = {"product": product, "generated_at": generated_at()}
    return {
        "props": props,
        # A returned revalidate wins over the module's: check sold-out products more often.
        "revalidate": 10 if product["stock"] == 0 else revalidate,
        "tags": ["products", f"product:{product_id}"],
    }
