"""A docs page: a catch-all, /docs/a/b has params["path"] == ["a", "b"]; revalidated on demand."""

from typing import Any

from pages._lib.content import generated_at, get_doc, list_docs

revalidate = False
fallback = "blocking"


def get_static_paths() -> list[dict[str, list[str]]]:
    return [{"path": doc["path"].split("/")} for doc in list_docs()]


def get_static_props(ctx: Any) -> dict[str, Any]:
    doc_path = "/".join(ctx.params["path"])
    doc = get_doc(doc_path)
    if doc is None:
        return {"not_found": True}
    props = {"doc": doc, "docs": list_docs(), "generated_at": generated_at()}
    return {"props": props, "tags": ["docs", f"doc:{doc_path}"]}
