"""The example site's data: queries over data/site.sql, loaded fresh into in-memory SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Relative to the working directory, which is the site folder for every function: this
# module runs from the build's snapshot of the code, the data stays live in the site.
SEED = Path("data") / "site.sql"

Record = dict[str, Any]


@contextmanager
def _db() -> Iterator[sqlite3.Connection]:
    # Loading the seed on every call costs about a millisecond and means an edit
    # to data/site.sql shows up at the next regeneration, with no file written
    # at runtime and nothing to migrate.
    db = sqlite3.connect(":memory:")
    try:
        db.row_factory = sqlite3.Row
        db.executescript(SEED.read_text(encoding="utf-8"))
        yield db
    finally:
        db.close()


def _records(rows: list[sqlite3.Row]) -> list[Record]:
    # Props are embedded in the page as JSON, so they must be plain dicts.
    return [dict(row) for row in rows]


def generated_at() -> str:
    """The render time, shown on ISR pages so a regeneration is visible."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- text -------------------------------------------------------------------


def blocks(text: str) -> list[Record]:
    """Split a body into blocks for _macros.html: p, h, ul and code."""
    out: list[Record] = []
    for chunk in _chunks(text):
        if chunk.startswith("```"):
            out.append({"kind": "code", "text": chunk.strip("`\n")})
        elif chunk.startswith("## "):
            out.append({"kind": "h", "parts": _inline(chunk[3:])})
        elif chunk.startswith("- "):
            items = [line[2:] for line in chunk.splitlines()]
            out.append({"kind": "ul", "items": [_inline(item) for item in items]})
        else:
            out.append({"kind": "p", "parts": _inline(" ".join(chunk.split()))})
    return out


def _chunks(text: str) -> Iterator[str]:
    """Blank-line separated chunks; a fenced code block is one chunk, blank lines and all."""
    chunk: list[str] = []
    fenced = False
    for line in text.strip().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not line.strip() and not fenced:
            if chunk:
                yield "\n".join(chunk)
            chunk = []
        else:
            chunk.append(line)
    if chunk:
        yield "\n".join(chunk)


def _inline(text: str) -> list[str]:
    """Text split on backticks: odd-numbered parts are inline code."""
    return text.split("`")


# --- blog -------------------------------------------------------------------

_POST_COLUMNS = """
    p.slug, p.title, p.author, a.name AS author_name, p.published, p.draft, p.summary,
    (SELECT group_concat(t.topic) FROM post_topics t WHERE t.post = p.slug) AS topics
"""


def _post(row: sqlite3.Row) -> Record:
    post = dict(row)
    post["draft"] = bool(post["draft"])
    post["topics"] = sorted(post["topics"].split(",")) if post["topics"] else []
    return post


def list_posts(*, author: str | None = None, topics: list[str] | None = None) -> list[Record]:
    """Published posts, newest first; optionally one author's, or those with every topic."""
    sql = f"SELECT {_POST_COLUMNS} FROM posts p JOIN authors a ON a.slug = p.author"
    sql += " WHERE NOT p.draft"
    args: list[str] = []
    if author is not None:
        sql += " AND p.author = ?"
        args.append(author)
    for topic in topics or []:
        sql += " AND EXISTS (SELECT 1 FROM post_topics t WHERE t.post = p.slug AND t.topic = ?)"
        args.append(topic)
    with _db() as db:
        return [_post(row) for row in db.execute(sql + " ORDER BY p.published DESC", args)]


def get_post(slug: str) -> Record | None:
    """One post with its body split into blocks, drafts included (the page decides), or None."""
    sql = f"""SELECT {_POST_COLUMNS}, p.body FROM posts p JOIN authors a ON a.slug = p.author
              WHERE p.slug = ?"""
    with _db() as db:
        row = db.execute(sql, (slug,)).fetchone()
    if row is None:
        return None
    post = _post(row)
    post["blocks"] = blocks(post.pop("body"))
    return post


def list_topics() -> list[Record]:
    """Topics of published posts with their post counts, alphabetically."""
    sql = """SELECT t.topic, count(*) AS count FROM post_topics t
             JOIN posts p ON p.slug = t.post WHERE NOT p.draft
             GROUP BY t.topic ORDER BY t.topic"""
    with _db() as db:
        return _records(db.execute(sql).fetchall())


# --- authors ----------------------------------------------------------------


def list_authors() -> list[Record]:
    """Every author, by name."""
    with _db() as db:
        return _records(db.execute("SELECT * FROM authors ORDER BY name").fetchall())


def get_author(slug: str) -> Record | None:
    """One author, or None."""
    with _db() as db:
        row = db.execute("SELECT * FROM authors WHERE slug = ?", (slug,)).fetchone()
    return dict(row) if row is not None else None


# --- docs -------------------------------------------------------------------


def list_docs() -> list[Record]:
    """Every docs page (path, title, depth), in sidebar order."""
    with _db() as db:
        rows = _records(db.execute("SELECT path, title FROM docs ORDER BY position").fetchall())
    for doc in rows:
        doc["depth"] = doc["path"].count("/")
    return rows


def get_doc(path: str) -> Record | None:
    """One docs page with its blocks, breadcrumbs, children and neighbours, or None."""
    with _db() as db:
        row = db.execute("SELECT path, title, body FROM docs WHERE path = ?", (path,)).fetchone()
    if row is None:
        return None
    doc = dict(row)
    doc["blocks"] = blocks(doc.pop("body"))
    toc = list_docs()
    titles = {d["path"]: d["title"] for d in toc}
    segments = path.split("/")
    doc["breadcrumbs"] = [
        {"path": p, "title": titles.get(p, p)}
        for p in ("/".join(segments[: i + 1]) for i in range(len(segments) - 1))
    ]
    doc["children"] = [d for d in toc if d["path"].rpartition("/")[0] == path]
    index = [d["path"] for d in toc].index(path)
    doc["previous"] = toc[index - 1] if index > 0 else None
    doc["next"] = toc[index + 1] if index + 1 < len(toc) else None
    return doc


# --- products ---------------------------------------------------------------


def list_products() -> list[Record]:
    """Every product, by id."""
    with _db() as db:
        return _records(db.execute("SELECT * FROM products ORDER BY id").fetchall())


def get_product(product_id: int) -> Record | None:
    """One product, or None."""
    with _db() as db:
        row = db.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
    return dict(row) if row is not None else None
