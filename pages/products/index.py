"""The shop: ISR listing every product, with links to the fallback: True product pages."""

from typing import Any

from pages._lib.content import generated_at, list_products

revalidate = 60


def get_static_props(ctx: Any) -> dict[str, Any]:
    props = {"products": list_products(), "generated_at": generated_at()}
    return {"props": props, "tags": ["products"]}
