"""A stored record's bytes: each variant's responses, heads included, picked out as they
are sent (the disk cache serves pages memory does not keep this way)."""

from __future__ import annotations

import pytest

from isr.cache import layout
from isr.errors import CacheError

from cache_support import page_record, record


@pytest.mark.parametrize("variant", ["html", "data"])
@pytest.mark.parametrize("coding", ["identity", "br", "gzip"])
def test_served_picks_the_response_a_decoded_record_would_send(variant: str, coding: str) -> None:
    page = page_record(1, 6_000)
    raw = page.to_bytes()
    decoded = getattr(page, variant)
    served = layout.served(raw, variant, coding)
    assert (served.head, served.body) == (decoded.head(coding), decoded.bodies[coding])
    assert served.head.startswith(b"HTTP/1.1 200 OK\r\n") and served.head.endswith(b"\r\n")
    assert served.status == 200
    assert (served.generated_at, served.started_at, served.tags) == (page.generated_at, page.started_at, list(page.tags))
    assert served.stale_at == page.stale_at


def test_a_coding_not_stored_gives_the_identity_response() -> None:
    small = record("/small", "g1", b"<p>short</p>")  # too short to compress: identity only
    served = layout.served(small.to_bytes(), "html", "br")
    assert served.body == b"<p>short</p>" and b"Content-Encoding" not in served.head


def test_a_record_never_goes_stale_without_revalidate() -> None:
    page = record("/p", "g1")
    page.revalidate = False
    served = layout.served(page.to_bytes(), "html", "identity")
    assert served.stale_at == float("inf")


def test_bytes_of_another_layout_are_refused() -> None:
    raw = page_record(1, 2_000).to_bytes()
    with pytest.raises(CacheError, match="another isr version"):
        layout.unpack(b"isr2" + raw[4:])
    with pytest.raises(CacheError, match="truncated"):
        layout.unpack(raw[:3])
    with pytest.raises(CacheError, match="damaged"):
        layout.unpack(b"isr3\x00\x00\x00\x05{bad}")
