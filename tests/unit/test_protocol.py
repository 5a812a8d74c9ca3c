"""The HTTP connection's set-up that is not visible in a response."""

from __future__ import annotations

from yarl import URL

from isr.http.protocol import ConnectionServer


async def test_a_server_builds_each_request_url_anew_not_through_yarls_cache() -> None:
    """aiohttp's parser builds every request's URL with URL.build(..., encoded=True); over
    many pages, yarl's cache of the last 128 missed on nearly every request (protocol.py)."""
    ConnectionServer(lambda request: None)
    first = URL.build(path="/item/1", encoded=True)
    again = URL.build(path="/item/1", encoded=True)
    assert first == again and first is not again
