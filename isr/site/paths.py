"""Request paths: percent-decoded exactly once, split into safe segments."""

from __future__ import annotations

from urllib.parse import quote, unquote

from isr.errors import BadPath

URL_SAFE = "/:@!$&'()*+,;=-._~"  # what stays unescaped when a path is written back as a URL


def split_path(raw: str) -> list[str]:
    """Decode a raw path (no query) into segments; BadPath when it can name no page.

    Splitting happens before decoding, so `%2F` can never create a segment boundary;
    `+` is not a space in a path.
    """
    if not raw.startswith("/"):
        raise BadPath("path must start with /")
    if raw == "/":
        return []
    segments = []
    for part in raw[1:].split("/"):
        try:
            segment = unquote(part, errors="strict")
        except UnicodeDecodeError:
            raise BadPath("path is not valid UTF-8 after percent-decoding") from None
        segments.append(check_segment(segment))
    return segments


def check_segment(segment: str) -> str:
    if not segment or "/" in segment or "\x00" in segment or ".." in segment or segment == ".":
        raise BadPath("path has an empty, '.', '..', '/' or NUL segment")
    return segment


def segments_of(path: str) -> list[str]:
    """The segments of a canonical (already decoded) path; never decodes again."""
    return [] if path == "/" else path[1:].split("/")


def join_path(segments: list[str]) -> str:
    """The canonical (decoded) path: the cache key of a page."""
    return "/" + "/".join(segments)


def data_path(build_id: str, path: str) -> str:
    """The raw URL of a page's JSON variant; `/` is `index.json`."""
    name = "/index" if path == "/" else quote(path, safe=URL_SAFE)
    return f"/_isr/data/{build_id}{name}.json"
