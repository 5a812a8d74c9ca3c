"""The request and response objects of API functions, after Next.js API routes."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

import orjson

from isr.errors import BadRequestBody
from isr.runtime import capture

JSON_TYPES = ("application/json", "application/ld+json")
# The server frames every response itself; a function's value for one of these would
# contradict the body it sends (a client waiting for bytes that never come).
SERVER_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"})


class Request:
    """What a handler reads: method, path, query, headers, cookies and the parsed body."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.method: str = event["method"]
        self.path: str = event["path"]
        self.query: dict[str, Any] = {**event["query"], **event["params"]}
        self.headers: dict[str, str] = event["headers"]
        self.cookies: dict[str, str] = event["cookies"]
        self.body: Any = parse_body(event["body"], self.headers.get("content-type", ""))


def parse_body(raw: bytes, content_type: str) -> Any:
    """JSON and ld+json to objects, forms to dicts, text to str, anything else stays bytes."""
    media = content_type.split(";")[0].strip().lower()
    if media in JSON_TYPES:
        if not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequestBody("Invalid JSON") from None
    if media == "application/x-www-form-urlencoded":
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    if media.startswith("text/") or (not media and not raw):
        return raw.decode("utf-8", "replace")
    return raw


def server_owned(name: str) -> bool:
    """True (and a line in the invocation's log) for a framing or hop-by-hop header, which is dropped."""
    if name.lower() not in SERVER_HEADERS:
        return False
    capture.note(f"isr: header {name!r} dropped: framing and hop-by-hop headers are set by the server")
    return True


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what aiohttp's header writer refuses


def check_header(name: str, value: str) -> None:
    """A header a function sets may not carry line breaks (response splitting) or other
    control characters but tab: what aiohttp refuses to send, refused when it is set."""
    if not name or any(c in name for c in ": \t") or _CONTROL.search(name) or _CONTROL.search(value):
        raise ValueError(f"invalid header {name!r}: names and values may not contain line breaks or control characters")


class Response:
    """Chainable like Next.js' `res`: `response.status(201).json({...})`."""

    def __init__(self) -> None:
        self.status_code = 200
        self.headers: list[tuple[str, str]] = []
        self.body: bytes | None = None

    @property
    def sent(self) -> bool:
        return self.body is not None

    def status(self, code: int) -> Response:
        if not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(f"status must be an HTTP status code, not {code!r}")
        self.status_code = code
        return self

    def set_header(self, name: str, value: str) -> Response:
        check_header(name, str(value))
        if server_owned(name):
            return self
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, str(value)))
        return self

    def set_cookie(self, name: str, value: str, **attributes: Any) -> Response:
        """Cookie attributes as keywords: max_age, path, domain, secure, httponly, samesite, expires."""
        cookie: SimpleCookie = SimpleCookie()
        cookie[name] = value
        for key, attribute in attributes.items():
            cookie[name][key.replace("_", "-")] = attribute
        header = cookie[name].OutputString()
        check_header("Set-Cookie", header)
        self.headers.append(("Set-Cookie", header))
        return self

    def json(self, value: Any) -> Response:
        self._default_type("application/json; charset=utf-8")
        return self._end(orjson.dumps(value))

    def send(self, body: str | bytes | Any) -> Response:
        if isinstance(body, bytes):
            self._default_type("application/octet-stream")
            return self._end(body)
        if isinstance(body, str):
            self._default_type("text/html; charset=utf-8")
            return self._end(body.encode())
        return self.json(body)

    def redirect(self, status_or_url: int | str, url: str | None = None) -> Response:
        status, target = (307, status_or_url) if url is None else (status_or_url, url)
        self.status(int(status)).set_header("Location", str(target))
        return self._end(b"")

    def _default_type(self, content_type: str) -> None:
        if not any(k.lower() == "content-type" for k, _ in self.headers):
            self.headers.append(("Content-Type", content_type))

    def _end(self, body: bytes) -> Response:
        self.body = body
        return self
