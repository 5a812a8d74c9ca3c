"""The page data embedded in HTML, escaped so no prop value can leave its <script>."""

from __future__ import annotations

from typing import Any

import orjson

from isr.constants import DATA_SCRIPT_ID

# In JSON these characters only occur inside strings, so replacing them byte-wise
# with \\u escapes keeps the document equal when parsed (as Next.js does).
_ESCAPES = (
    (b"&", b"\\u0026"),
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def dump_data(data: Any) -> bytes:
    """JSON safe to embed in HTML; also the body of the JSON variant."""
    raw = orjson.dumps(data)
    for char, escape in _ESCAPES:
        raw = raw.replace(char, escape)
    return raw


def embed(html: bytes, payload: bytes, script_id: str = DATA_SCRIPT_ID, type_: str = "application/json") -> bytes:
    """Insert a script before the last </body>, or at the end without one."""
    tag = f'<script id="{script_id}" type="{type_}">'.encode() + payload + b"</script>"
    at = html.lower().rfind(b"</body>")
    return html + tag if at < 0 else html[:at] + tag + html[at:]
