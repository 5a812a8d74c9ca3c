"""Docs home: ISR with revalidate = False, so it changes only when revalidated on demand."""

from typing import Any

from pages._lib.content import generated_at, list_docs

revalidate = False  # fresh until `isr revalidate /docs` or `isr revalidate --tag docs`


def get_static_props(ctx: Any) -> dict[str, Any]:
    return {"props": {"docs": list_docs(), "generated_at": generated_at()}, "tags": ["docs"]}
