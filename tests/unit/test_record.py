"""Generation records: one value holding both variants, and the data-script escaping."""

import orjson

from isr.cache.compression import choose, compress
from isr.cache.record import HTML_TYPE, JSON_TYPE, Record, cache_control, make_variant
from isr.runtime.datascript import dump_data, embed


def record(body: bytes = b"<html><body>hi</body></html>" * 100, revalidate: int | bool = 60) -> Record:
    return Record(
        path="/a", page="/[x]", build_id="b", generation="g1", started_at=999.0, generated_at=1000.0,
        revalidate=revalidate, tags=("t",), outcome="page",
        html=make_variant(200, HTML_TYPE, body), data=make_variant(200, JSON_TYPE, b'{"props":{}}'),
    )


def test_round_trip_keeps_every_variant_and_header() -> None:
    original = record()
    copy = Record.from_bytes(original.to_bytes())
    assert copy.html.bodies == original.html.bodies and copy.data.bodies == original.data.bodies
    for variant, copied in ((original.html, copy.html), (original.data, copy.data)):
        assert all(copied.headers(c) == variant.headers(c) for c in variant.encodings)
    assert copy.tags == ("t",) and copy.stale_at == 1060.0


def test_compressed_variants_are_stored_with_their_own_etags() -> None:
    html = record().html
    assert set(html.bodies) == {"identity", "br", "gzip"}
    assert len(set(html.etags.values())) == 3
    assert html.headers("br")["Content-Encoding"] == "br" and html.headers("br")["Vary"] == "Accept-Encoding"
    assert record().data.encodings == ("identity",)  # small bodies are not compressed


def test_cache_control_follows_revalidate() -> None:
    assert cache_control(60) == "s-maxage=60, stale-while-revalidate=31535940"
    assert cache_control(False) == "s-maxage=31536000, stale-while-revalidate"
    assert record(revalidate=False).stale_at == float("inf")


def test_accept_encoding_preference_and_refusal() -> None:
    codings = tuple(compress(b"x" * 2000))
    assert choose("gzip, br", codings) == "br"
    assert choose("br;q=0, gzip", codings) == "gzip"
    assert choose("identity", codings) == "identity"
    assert choose("*", codings) == "br"


def test_data_script_cannot_be_closed_by_a_prop() -> None:
    evil = {"x": "</script><script>alert(1)</script>", "y": "a&b>c\u2028\u2029"}
    payload = dump_data(evil)
    assert b"<" not in payload and b">" not in payload and b"&" not in payload
    assert "\u2028".encode() not in payload and "\u2029".encode() not in payload
    assert orjson.loads(payload) == evil
    html = embed(b"<html><body><p>x</p></BODY></html>", payload)
    assert html.count(b"</script>") == 1
    assert html.index(b'<script id="__ISR_DATA__"') < html.index(b"</BODY>")


def test_embed_without_body_appends() -> None:
    assert embed(b"<p>x</p>", b"{}").endswith(b"{}</script>")


def test_a_variant_serializes_its_head_once_per_coding() -> None:
    html = record().html
    head = html.head("br")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n") and not head.endswith(b"\r\n\r\n")
    lines = head.decode().split("\r\n")[1:-1]
    fields = dict(line.split(": ", 1) for line in lines)
    assert fields == {**html.headers("br"), "Content-Length": str(len(html.bodies["br"]))}
    assert html.head("br") is head  # made once
    html.prepare("no-store", "g2")  # a new Cache-Control or generation makes it again
    assert b"Cache-Control: no-store\r\n" in html.head("br") and b"x-isr-generation: g2\r\n" in html.head("br")
    moved = make_variant(308, HTML_TYPE, b"moved", location="/caf\u00e9")
    assert moved.head("identity").startswith(b"HTTP/1.1 308 Permanent Redirect\r\n")
    assert "Location: /caf\u00e9\r\n".encode() in moved.head("identity")


def test_a_variant_answers_each_coding_with_its_own_head_and_body() -> None:
    """The HIT path's `response`: per coding, the head `head` makes and that coding's body,
    whichever coding was asked first; variants of the same codings share one tuple of them."""
    first, second = record().html, record().html
    assert first.encodings == ("identity", "br", "gzip") and first.encodings is second.encodings
    for coding in ("gzip", "identity", "br"):
        head, body = first.response(coding)
        assert body == first.bodies[coding] and head is first.head(coding)
        assert f"Content-Length: {len(body)}\r\n".encode() in head
    assert first.response("gzip")[0] is first.head("gzip")  # made once, kept
