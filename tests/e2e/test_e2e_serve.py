"""`isr serve`: the headers and cache states of SPEC section 2, static files, the not-found
page, redirects and SSR pages (issue item 4)."""

from __future__ import annotations

import gzip
import re
import socket
import time
from urllib.parse import urlsplit

import brotli

import pytest

from e2e_support import (
    NO_STORE,
    Server,
    Site,
    assert_no_leak,
    data_path,
    embedded_data,
    raw_request,
    rendered_value,
    wait_for,
)


@pytest.fixture
def server(shared_server: Server) -> Server:
    """This module's tests share one server; each uses its own paths."""
    return shared_server


@pytest.fixture
def site(shared_server: Server) -> Site:
    return shared_server.site

SWR_RE = re.compile(r"^s-maxage=(\d+), stale-while-revalidate(=\d+)?$")


def cache_control_max_age(resp_header: str | None) -> int:
    assert resp_header is not None, "no Cache-Control header"
    match = SWR_RE.match(resp_header)
    assert match, f"Cache-Control {resp_header!r} is not 's-maxage=N, stale-while-revalidate=S'"
    return int(match.group(1))


# ----------------------------------------------------------------- cache states


def test_first_request_is_miss_then_hit_with_same_generation(server: Server, site: Site) -> None:
    first = server.page("/")
    assert first.cache == "MISS", first.describe()
    assert first.generation, first.describe()
    assert "HOME-PAGE" in first.text and "VALUE=[home-1]" in first.text
    assert first.header("content-type", "").startswith("text/html")

    second = server.page("/")
    assert second.cache == "HIT", second.describe()
    assert second.generation == first.generation
    assert second.body == first.body
    assert site.count("index") == 1, "a HIT must not render again"


def test_isr_cache_control_uses_the_page_revalidate(server: Server) -> None:
    resp = server.page("/big")
    assert cache_control_max_age(resp.header("cache-control")) == 60


def test_revalidate_false_cache_control(server: Server) -> None:
    resp = server.page("/about")
    assert resp.header("cache-control") == "s-maxage=31536000, stale-while-revalidate"


def test_revalidate_returned_by_get_static_props_overrides_module(server: Server) -> None:
    first = server.page("/override")
    assert cache_control_max_age(first.header("cache-control")) == 30
    again = server.page("/override")
    assert again.cache == "HIT"
    assert cache_control_max_age(again.header("cache-control")) == 30


def test_age_header_counts_whole_seconds_since_generation(server: Server, site: Site) -> None:
    site.control("age", value="aged", revalidate=60)
    first = server.page("/ctl/age")
    produced = time.monotonic()
    assert first.header("age") is not None, first.describe()
    assert re.fullmatch(r"\d+", first.header("age") or ""), first.describe()
    assert int(first.header("age") or "0") == 0

    def aged() -> int:
        age = server.page("/ctl/age").header("age")
        assert age is not None and re.fullmatch(r"\d+", age), age
        return int(age)

    age = wait_for(lambda: max(aged(), 0) or None, timeout=5, interval=0.2, what="Age >= 1")
    assert age <= int(time.monotonic() - produced) + 1


def test_query_string_does_not_split_the_cache(server: Server, site: Site) -> None:
    first = server.page("/blog/query-a")
    with_query = server.page("/blog/query-a?utm_source=x&b=2")
    assert with_query.cache == "HIT", with_query.describe()
    assert with_query.generation == first.generation
    post = server.page("/blog/query-b?page=2")
    assert post.cache == "MISS", post.describe()
    plain = server.page("/blog/query-b")
    assert plain.cache == "HIT" and plain.generation == post.generation
    assert site.count("blog:query-a") == 1 and site.count("blog:query-b") == 1


def test_differently_encoded_paths_are_one_record(server: Server, site: Site) -> None:
    first = server.page("/blog/encoded")
    for variant in ("/blog/%65ncoded", "/blog/enc%6Fded", "/blog/%65%6e%63%6f%64%65%64"):
        resp = server.page(variant)
        assert resp.cache == "HIT", f"{variant}: {resp.describe()}"
        assert resp.generation == first.generation, variant
    assert site.count("blog:encoded") == 1


def test_paths_are_decoded_exactly_once(server: Server) -> None:
    double = server.page("/docs/a%252Fb")
    assert embedded_data(double.text)["params"] == {"path": ["a%2Fb"]}
    assert "PARTS=[a%2Fb]" in double.text
    plus = server.page("/docs/a+b/c")
    assert embedded_data(plus.text)["params"] == {"path": ["a+b", "c"]}


def test_optional_catch_all_bare_path_has_no_path_param(server: Server) -> None:
    bare = server.page("/shop")
    assert embedded_data(bare.text)["params"] == {}
    assert "HAS_PATH=[False]" in bare.text
    deep = server.page("/shop/a/b")
    assert embedded_data(deep.text)["params"] == {"path": ["a", "b"]}
    assert "PARTS=[a|b]" in deep.text


def test_cache_is_written_to_the_cache_folder(server: Server, site: Site) -> None:
    server.page("/about")
    server.page("/blog/hello")
    stored = [p for p in site.cache.rglob("*") if p.is_file()] if site.cache.exists() else []
    assert stored, f"nothing was written to --cache {site.cache}"
    default = site.root / "cache"
    written = [p for p in default.rglob("*") if p.is_file()] if default.exists() else []
    assert written == [], f"--cache was given, yet the site's cache/ was written: {written}"


def test_trailing_slash_redirects_permanently(server: Server) -> None:
    resp = server.get("/about/")
    assert resp.status == 308, resp.describe()
    assert urlsplit(resp.header("location") or "").path == "/about", resp.describe()
    query = server.get("/about/?utm=1&b=2")
    assert query.status == 308, query.describe()
    location = urlsplit(query.header("location") or "")
    assert (location.path, location.query) == ("/about", "utm=1&b=2"), query.describe()
    nested = server.get("/blog/hello/")
    assert nested.status == 308, nested.describe()
    assert urlsplit(nested.header("location") or "").path == "/blog/hello"


def test_other_methods_get_405_with_allow(server: Server) -> None:
    for method in ("POST", "PUT", "DELETE"):
        resp = server.request(method, "/about", body=b"x=1")
        assert resp.status == 405, f"{method}: {resp.describe()}"
        allow = {m.strip().upper() for m in (resp.header("allow") or "").split(",")}
        assert {"GET", "HEAD"} <= allow, resp.describe()
        assert_no_leak(resp.body)


# ----------------------------------------------------------------- ETag and 304


def test_strong_etag_and_304(server: Server) -> None:
    first = server.page("/about")
    etag = first.header("etag")
    assert etag and re.fullmatch(r'"[^"]+"', etag), f"not a strong ETag: {etag!r}"

    resp = server.get("/about", headers={"If-None-Match": etag})
    assert resp.status == 304, resp.describe()
    assert resp.body == b""
    assert resp.header("etag") == etag
    for name in ("cache-control", "x-isr-generation", "vary"):
        assert resp.header(name) == first.header(name), f"304 {name}: {resp.describe()}"
    assert resp.cache == "HIT"

    listed = server.get("/about", headers={"If-None-Match": f'"nope", {etag}'})
    assert listed.status == 304, listed.describe()
    other = server.get("/about", headers={"If-None-Match": '"some-other-etag"'})
    assert other.status == 200 and other.body == first.body


def test_json_variant_has_its_own_etag_and_304(server: Server) -> None:
    html = server.page("/about")
    build_id = embedded_data(html.text)["build_id"]
    data = server.page(data_path(build_id, "/about"))
    etag = data.header("etag")
    assert etag and re.fullmatch(r'"[^"]+"', etag), f"not a strong ETag: {etag!r}"
    assert etag != html.header("etag"), "HTML and JSON must have different ETags"
    resp = server.get(data_path(build_id, "/about"), headers={"If-None-Match": etag})
    assert resp.status == 304 and resp.body == b"", resp.describe()
    assert resp.header("x-isr-generation") == html.generation
    # The HTML ETag does not validate the JSON variant.
    cross = server.get(data_path(build_id, "/about"), headers={"If-None-Match": html.header("etag") or ""})
    assert cross.status == 200, cross.describe()


# ---------------------------------------------------------------- compression


def test_brotli_and_gzip_for_large_bodies(server: Server) -> None:
    plain = server.page("/big")
    assert len(plain.body) > 1024
    assert plain.header("content-encoding") in (None, "identity"), plain.describe()

    br = server.page("/big", headers={"Accept-Encoding": "br"})
    assert br.header("content-encoding") == "br", br.describe()
    assert "accept-encoding" in (br.header("vary") or "").lower(), br.describe()
    assert brotli.decompress(br.body) == plain.body

    gz = server.page("/big", headers={"Accept-Encoding": "gzip"})
    assert gz.header("content-encoding") == "gzip", gz.describe()
    assert "accept-encoding" in (gz.header("vary") or "").lower(), gz.describe()
    assert gzip.decompress(gz.body) == plain.body

    both = server.page("/big", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert both.header("content-encoding") in ("br", "gzip"), both.describe()
    assert both.generation == plain.generation

    refused = server.page("/big", headers={"Accept-Encoding": "br;q=0, gzip"})
    assert refused.header("content-encoding") == "gzip", refused.describe()
    none = server.page("/big", headers={"Accept-Encoding": "gzip;q=0"})
    assert none.header("content-encoding") in (None, "identity"), none.describe()
    assert none.body == plain.body

    etag = br.header("etag")
    assert etag
    again = server.get("/big", headers={"Accept-Encoding": "br", "If-None-Match": etag})
    assert again.status == 304, again.describe()
    assert "accept-encoding" in (again.header("vary") or "").lower(), again.describe()


def test_json_variant_is_compressed_too(server: Server) -> None:
    build_id = server.build_id("/big")
    url = data_path(build_id, "/big")
    plain = server.page(url)
    assert len(plain.body) > 1024
    gz = server.page(url, headers={"Accept-Encoding": "gzip"})
    assert gz.header("content-encoding") == "gzip", gz.describe()
    assert gzip.decompress(gz.body) == plain.body


# ------------------------------------------------------- connections

def _responses(data: bytes, methods: list[str]) -> list[tuple[str, dict[str, str], bytes]]:
    """Split the bytes of responses sent one after another on a connection, to requests of
    these methods (by Content-Length; an answer to HEAD has none of its body)."""
    found = []
    for method in methods:
        head, _, data = data.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
        size = 0 if method == "HEAD" else int(headers["content-length"])
        found.append((status, headers, data[:size]))
        data = data[size:]
    assert data == b"", f"bytes after the last answer: {data[:200]!r}"
    return found


def test_hits_pipelined_on_one_connection_come_back_whole_and_in_order(server: Server) -> None:
    """Keep-alive GETs and a HEAD (all written as prebuilt bytes), then a GET that closes."""
    asked = [("GET", "/about"), ("HEAD", "/"), ("GET", data_path(server.build_id(), "/about")),
             ("GET", "/"), ("HEAD", "/about"), ("GET", "/")]
    expected = [server.page(path) for _, path in asked]  # each a HIT from now on
    sent = "".join(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n" for method, path in asked[:-1])
    sent += f"GET {asked[-1][1]} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(sent.encode())
        answers = _responses(b"".join(iter(lambda: sock.recv(65536), b"")), [m for m, _ in asked])  # until closed
    assert [status for status, _, _ in answers] == ["HTTP/1.1 200 OK"] * len(asked)
    for (_, headers, body), want, (method, path) in zip(answers, expected, asked, strict=True):
        assert body == (b"" if method == "HEAD" else want.body), (method, path)
        assert headers["content-length"] == str(len(want.body)), (method, path, headers)
        assert headers["x-isr-cache"] == "HIT" and headers["etag"] == want.header("etag"), (path, headers)
        assert headers["x-isr-generation"] == want.generation and "date" in headers, (path, headers)
    assert answers[-1][1]["connection"] == "close" and "connection" not in answers[0][1], answers[-1][1]


def test_an_http_1_0_client_gets_the_hit(server: Server) -> None:
    want = server.page("/about")
    status, headers, body = raw_request(server.port, b"GET /about HTTP/1.0\r\n\r\n")
    assert status == 200 and body == want.body, headers
    assert headers["x-isr-cache"] == "HIT" and headers["etag"] == want.header("etag"), headers


# ------------------------------------------------------------------------ HEAD


def test_head_matches_get_without_body(server: Server) -> None:
    get = server.page("/about")
    status, headers, body = server.raw("HEAD", "/about")
    assert status == 200
    assert body == b"", f"HEAD sent a body: {body[:200]!r}"
    for name in ("content-type", "etag", "cache-control", "x-isr-generation"):
        assert headers.get(name) == get.header(name), f"HEAD {name}: {headers}"
    assert headers.get("x-isr-cache") == "HIT"
    if "content-length" in headers:
        assert headers["content-length"] == str(len(get.body))


def test_head_on_a_new_path_generates_and_stores_it(server: Server, site: Site) -> None:
    status, headers, body = server.raw("HEAD", "/blog/head-first")
    assert status == 200 and body == b""
    assert headers.get("x-isr-cache") == "MISS", headers
    assert site.count("blog:head-first") == 1
    get = server.page("/blog/head-first")
    assert get.cache == "HIT", get.describe()
    assert get.generation == headers.get("x-isr-generation")
    assert site.count("blog:head-first") == 1


def test_head_on_unknown_path_is_404(server: Server) -> None:
    status, _, body = server.raw("HEAD", "/no/such/page")
    assert status == 404 and body == b""


# ------------------------------------------------------------- static files


def test_static_files_from_public(server: Server) -> None:
    robots = server.page("/robots.txt")
    assert "ROBOTS-MARKER-7b1e" in robots.text
    assert (robots.header("content-type") or "").startswith("text/plain"), robots.describe()
    css = server.page("/css/site.css")
    assert "CSS-MARKER-93ad" in css.text
    assert (css.header("content-type") or "").startswith("text/css"), css.describe()
    status, headers, body = server.raw("HEAD", "/robots.txt")
    assert status == 200 and body == b""


def test_dot_files_and_site_files_are_not_served(server: Server) -> None:
    for path in ("/.hidden", "/.env", "/isr.json", "/pages/about.py", "/about.py",
                 "/public/robots.txt", "/_lib/util", "/_lib/util.py", "/_layout"):  # fmt: skip
        resp = server.get(path)
        assert resp.status == 404, f"{path}: {resp.describe()}"
        assert_no_leak(resp.body)


# ---------------------------------------------------------- not found, redirects


def test_unknown_path_gets_the_not_found_page(server: Server) -> None:
    resp = server.get("/no/such/page")
    assert resp.status == 404, resp.describe()
    assert "CUSTOM-404-PAGE" in resp.text
    assert (resp.header("content-type") or "").startswith("text/html")
    assert resp.header("cache-control") == NO_STORE, resp.describe()


def test_not_found_result_is_a_cached_404(server: Server, site: Site) -> None:
    first = server.get("/gone")
    assert first.status == 404, first.describe()
    assert "CUSTOM-404-PAGE" in first.text and "GONE-PAGE-SHOULD-NOT-RENDER" not in first.text
    assert first.cache == "MISS" and first.generation
    assert cache_control_max_age(first.header("cache-control")) == 60
    second = server.get("/gone")
    assert second.status == 404 and second.cache == "HIT", second.describe()
    assert second.generation == first.generation
    assert site.count("gone") == 1

    build_id = server.build_id("/about")
    data = server.get(data_path(build_id, "/gone"))
    assert data.status == 404, data.describe()
    assert data.json().get("not_found") is True, data.describe()
    assert data.generation == first.generation
    assert site.count("gone") == 1


def test_redirect_results_are_cached_307_and_308(server: Server, site: Site) -> None:
    temp = server.get("/moved")
    assert temp.status == 307, temp.describe()
    assert urlsplit(temp.header("location") or "").path == "/about"
    assert temp.cache == "MISS" and temp.generation
    assert cache_control_max_age(temp.header("cache-control")) == 60
    again = server.get("/moved")
    assert again.status == 307 and again.cache == "HIT" and again.generation == temp.generation
    assert site.count("moved") == 1

    perm = server.get("/moved_perm")
    assert perm.status == 308, perm.describe()
    assert urlsplit(perm.header("location") or "").path == "/about"

    build_id = server.build_id("/about")
    data = server.get(data_path(build_id, "/moved"))
    assert data.status == 200, data.describe()
    assert data.json()["redirect"] == {"destination": "/about", "permanent": False}
    pdata = server.get(data_path(build_id, "/moved_perm"))
    assert pdata.json()["redirect"] == {"destination": "/about", "permanent": True}


def test_first_render_failure_is_500_and_stores_nothing(server: Server, site: Site) -> None:
    site.control("firstfail", fail=True, revalidate=60)
    resp = server.get("/ctl/firstfail")
    assert resp.status == 500, resp.describe()
    assert resp.header("cache-control") == NO_STORE, resp.describe()
    assert_no_leak(resp.body)

    site.control("firstfail", value="recovered", revalidate=60)
    ok = server.page("/ctl/firstfail")
    assert ok.cache == "MISS", ok.describe()
    assert rendered_value(ok.text) == "recovered"
    assert site.count("ctl:firstfail") == 2


# -------------------------------------------------------------------- static page


def test_static_page_is_served_unchanged(server: Server) -> None:
    first = server.page("/static")
    assert "STATIC-PAGE" in first.text, "the template extending _layout.html was not rendered"
    second = server.page("/static")
    assert second.cache != "STALE", second.describe()
    assert second.generation == first.generation
    assert second.body == first.body


# --------------------------------------------------------------------------- SSR


def test_ssr_page_renders_every_request_and_is_never_cached(server: Server, site: Site) -> None:
    first = server.page("/ssr?q=hello", headers={"Cookie": "flavor=mint", "X-Test": "hdr-1"})
    assert "Q=[hello]" in first.text
    assert "FLAVOR=[mint]" in first.text
    assert "XTEST=[hdr-1]" in first.text
    assert first.header("cache-control") == NO_STORE, first.describe()
    assert first.cache not in ("HIT", "STALE"), first.describe()

    second = server.page("/ssr?q=world")
    assert "Q=[world]" in second.text and "FLAVOR=[None]" in second.text
    third = server.page("/ssr?q=world")
    assert rendered_value_stamp(third.text) != rendered_value_stamp(second.text)
    assert site.count("ssr") == 3


def rendered_value_stamp(html: str) -> str:
    match = re.search(r"STAMP=\[(\d+)\]", html)
    assert match, html[:1000]
    return match.group(1)


def test_ssr_page_may_set_its_own_cache_control(server: Server, site: Site) -> None:
    resp = server.page("/ssr_headers")
    assert resp.header("cache-control") == "public, max-age=7", resp.describe()
    server.page("/ssr_headers")
    assert site.count("ssr_headers") == 2
