"""Calling a running server's revalidate endpoint: `isr revalidate` and `isr.revalidate()`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import aiohttp

from isr.constants import DEFAULT_URL, INTERNAL_TOKEN_VARIABLE, TOKEN_VARIABLE, URL_VARIABLE
from isr.errors import IsrError
from isr.runtime.lending import waiting_on_server


class RevalidateError(IsrError):
    """The server could not be asked, refused, or could not regenerate a path."""

    def __init__(self, message: str, status: int = 0, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.report = report or {}


async def post_revalidate(url: str, token: str, paths: Sequence[str], tags: Sequence[str], timeout: float) -> tuple[int, dict[str, Any]]:
    """POST to `url`/_isr/revalidate; (status, JSON body). RevalidateError when unreachable."""
    endpoint = url.rstrip("/") + "/_isr/revalidate"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(endpoint, json={"paths": list(paths), "tags": list(tags)}, headers=headers) as response:
                body = await response.json(content_type=None) if response.content_length != 0 else {}
                return response.status, body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise RevalidateError(f"cannot reach {endpoint}: {exc or type(exc).__name__}") from None


async def revalidate(*paths: str, tags: Sequence[str] = (), timeout: float = 300.0) -> dict[str, Any]:
    """Regenerate paths now and mark tags stale, from a function of the running server.

    Returns the endpoint's report; raises RevalidateError if any path failed, as
    Next.js' `res.revalidate()` throws.
    """
    url = os.environ.get(URL_VARIABLE, DEFAULT_URL)
    token = os.environ.get(INTERNAL_TOKEN_VARIABLE) or os.environ.get(TOKEN_VARIABLE, "")
    with waiting_on_server():  # in a worker, its bundle slot is lent to the regenerations meanwhile
        status, report = await post_revalidate(url, token, paths, tags, timeout)
    if status not in (200, 207):
        message = report.get("error", {}).get("message", f"HTTP {status}")
        raise RevalidateError(f"revalidate failed: {message}", status, report)
    if report.get("errors"):
        first = report["errors"][0]
        raise RevalidateError(f"revalidate {first['path']} failed: {first['code']} {first['message']}", status, report)
    return report
