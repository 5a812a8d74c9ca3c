"""API functions, SSR pages and the site's .env (issue 3, items 5, 6 and 7).

One server on tests/sites/functions for the whole module: these tests only read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e_support import NO_STORE, Server, embedded_data, wait_for
from functions_support import (
    DOTENV_SECRET,
    PUBLIC_DOTENV_SECRET,
    SERVER_ENV,
    api_ok,
    assert_api_error,
    assert_clean,
    fsite_of,
    shared,  # noqa: F401  (fixture)
)


def post(server: Server, path: str, body: bytes, content_type: str | None, method: str = "POST") -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = server.request(method, path, headers=headers, body=body)
    assert resp.status == 200, f"{method} {path}: {resp.describe()}\n{server.output()}"
    return resp.json()


# ----------------------------------------------------------------- the request


def test_handler_sees_method_path_query_headers_and_cookies(shared: Server) -> None:
    data = api_ok(
        shared,
        "/api/echo?a=1&a=2&b=x",
        headers={"X-Mixed-Case": "Yes", "Cookie": "flavor=choc; sid=42"},
    )
    assert data["method"] == "GET"
    assert data["path"] == "/api/echo"
    assert data["query"] == {"a": ["1", "2"], "b": "x"}, data
    headers = {k.lower(): v for k, v in data["headers"].items()}
    assert headers.get("x-mixed-case") == "Yes", data["headers"]
    assert data["cookies"] == {"flavor": "choc", "sid": "42"}, data


@pytest.mark.parametrize(
    ("content_type", "body", "kind", "parsed"),
    [
        ("application/json", b'{"n": 1, "list": [1, "two"]}', "dict", {"n": 1, "list": [1, "two"]}),
        ("application/json; charset=utf-8", b'[1, 2, 3]', "list", [1, 2, 3]),
        (
            "application/x-www-form-urlencoded",
            b"a=1&b=two+words&c=%C3%BC",
            "dict",
            {"a": "1", "b": "two words", "c": "\u00fc"},
        ),
        ("text/plain; charset=utf-8", "h\u00e9llo w\u00f6rld".encode(), "str", "h\u00e9llo w\u00f6rld"),
        ("text/csv", b"a,b\n1,2\n", "str", "a,b\n1,2\n"),
        ("application/octet-stream", b"\x00\x01\xfe\xff", "bytes", {"hex": "0001feff"}),
        ("image/png", b"\x89PNG\r\n", "bytes", {"hex": "89504e470d0a"}),
    ],
    ids=["json-object", "json-array", "form", "text", "text-csv", "octet-stream", "other-type"],
)
def test_body_is_parsed_by_content_type(
    shared: Server, content_type: str, body: bytes, kind: str, parsed: Any
) -> None:
    data = post(shared, "/api/echo", body, content_type)
    assert data["body_type"] == kind, data
    assert data["body"] == parsed, data


def test_malformed_json_gets_400_with_a_json_error(shared: Server) -> None:
    resp = shared.request("POST", "/api/echo", headers={"Content-Type": "application/json"}, body=b'{"a": ')
    assert resp.status == 400, f"{resp.describe()}\n{shared.output()}"
    assert "json" in (resp.header("content-type") or ""), resp.describe()
    error = resp.json().get("error")
    assert isinstance(error, dict) and error.get("code") and error.get("message"), resp.describe()
    assert_clean(resp)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_reaches_the_api_handler(shared: Server, method: str) -> None:
    resp = shared.request(method, "/api/echo?m=1")
    assert resp.status == 200, f"{method}: {resp.describe()}\n{shared.output()}"
    assert resp.json()["method"] == method


def test_head_reaches_the_api_handler_without_a_body(shared: Server) -> None:
    fsite = fsite_of(shared)
    before = fsite.render_tags().count("echo:HEAD")
    resp = shared.head("/api/echo")
    assert resp.status == 200, resp.describe()
    assert resp.body == b""
    wait_for(lambda: fsite.render_tags().count("echo:HEAD") == before + 1, 5, what="the handler to see HEAD")


def test_dynamic_segments_appear_in_the_query(shared: Server) -> None:
    data = api_ok(shared, "/api/items/42?x=1")
    assert data["route"] == "items/[id]"
    assert data["id"] == "42"
    assert data["query"] == {"id": "42", "x": "1"}, data
    # a static file beside a dynamic one wins
    assert api_ok(shared, "/api/items/i") == {"route": "items/i"}


def test_sync_and_async_handlers_both_work(shared: Server) -> None:
    assert api_ok(shared, "/api/sync?k=v") == {"sync": True, "method": "GET", "query": {"k": "v"}}
    assert api_ok(shared, "/api/echo")["method"] == "GET"


# ---------------------------------------------------------------- the response


def test_status_and_headers_chain(shared: Server) -> None:
    resp = shared.get("/api/respond?mode=chain")
    assert resp.status == 201, resp.describe()
    assert resp.header("x-one") == "1" and resp.header("x-two") == "2", resp.describe()
    assert "application/json" in (resp.header("content-type") or ""), resp.describe()
    assert resp.json() == {"chained": True}


def test_send_text_and_bytes(shared: Server) -> None:
    text = shared.get("/api/respond?mode=text")
    assert text.status == 200, text.describe()
    assert text.body == "plain text \u00fc".encode(), text.describe()
    raw = shared.get("/api/respond?mode=bytes")
    assert raw.status == 200, raw.describe()
    assert raw.body == b"\x00\x01\xffbin", raw.describe()
    assert raw.header("content-type") == "application/x-custom", raw.describe()
    teapot = shared.get("/api/respond?mode=teapot")
    assert (teapot.status, teapot.body) == (418, b"short and stout"), teapot.describe()


def test_redirect_defaults_to_307_and_takes_a_status(shared: Server) -> None:
    resp = shared.get("/api/respond?mode=redirect")
    assert resp.status == 307, resp.describe()
    assert resp.header("location") == "/api/echo?from=redirect", resp.describe()
    resp = shared.get("/api/respond?mode=redirect301")
    assert resp.status == 301, resp.describe()
    assert resp.header("location") == "/elsewhere", resp.describe()


def test_set_cookie_with_attributes(shared: Server) -> None:
    resp = shared.get("/api/respond?mode=cookie")
    assert resp.status == 200, resp.describe()
    cookie = resp.header("set-cookie") or ""
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert parts[0] == "session=abc123", cookie
    assert "max-age=3600" in parts, cookie
    assert "httponly" in parts, cookie
    assert "path=/" in parts, cookie
    assert resp.json() == {"ok": True}


def test_api_responses_are_not_cacheable_unless_the_handler_says_so(shared: Server) -> None:
    for path in ["/api/echo", "/api/sync", "/api/respond?mode=text"]:
        resp = shared.get(path)
        assert resp.header("cache-control") == NO_STORE, f"{path}: {resp.describe()}"
        assert resp.cache is None or resp.cache == "MISS", f"{path}: {resp.describe()}"
    own = shared.get("/api/respond?mode=cache")
    assert own.status == 200, own.describe()
    assert own.header("cache-control") == "public, max-age=60", own.describe()


# ------------------------------------------------------------------- SSR pages


def ssr_props(server: Server, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    resp = server.page(path, headers=headers)
    props = embedded_data(resp.text)["props"]
    assert isinstance(props, dict)
    return props


def test_ssr_page_sees_query_headers_and_cookies(shared: Server) -> None:
    props = ssr_props(
        shared,
        "/ssr?q=a&q=b&one=1",
        headers={"X-Mixed-Case": "Yes", "Cookie": "flavor=choc; sid=42"},
    )
    assert props["query"] == {"q": ["a", "b"], "one": "1"}, props
    assert props["headers"].get("x-mixed-case") == "Yes", props["headers"]
    assert all(k == k.lower() for k in props["headers"]), f"header names not lower-case: {list(props['headers'])}"
    assert props["cookies"] == {"flavor": "choc", "sid": "42"}, props


def test_ssr_page_renders_on_every_request(shared: Server) -> None:
    fsite = fsite_of(shared)
    before = fsite.count("ssr")
    stamps = set()
    for _ in range(3):
        resp = shared.page("/ssr")
        assert resp.cache != "HIT", resp.describe()
        assert resp.header("cache-control") == NO_STORE, resp.describe()
        stamps.add(embedded_data(resp.text)["props"]["stamp"])
    assert len(stamps) == 3, f"SSR page served a stored render: {stamps}"
    wait_for(lambda: fsite.count("ssr") >= before + 3, 5, what="three SSR renders")
    assert fsite.count("ssr") == before + 3


def test_ssr_page_sets_its_own_headers(shared: Server) -> None:
    resp = shared.page("/ssr_headers")
    assert resp.header("cache-control") == "public, max-age=30", resp.describe()
    assert resp.header("x-page-header") == "from-page", resp.describe()
    assert resp.cache != "HIT", resp.describe()


@pytest.mark.parametrize("path", ["/ssr", "/", "/regen/post405"])
def test_post_to_a_page_is_405(shared: Server, path: str) -> None:
    fsite = fsite_of(shared)
    before = fsite.render_tags()
    resp = shared.request("POST", path, headers={"Content-Type": "application/json"}, body=b"{}")
    assert resp.status == 405, resp.describe()
    assert "GET" in (resp.header("allow") or ""), resp.describe()
    assert fsite.render_tags() == before, "a POST to a page ran its data function"


# ------------------------------------------------------------------------- .env


def test_dotenv_is_loaded_and_the_server_environment_wins(shared: Server) -> None:
    data = api_ok(shared, "/api/env")
    assert data["FROM_DOTENV"] == "dotenv-loaded-7a1", data
    assert data["OVERRIDE_ME"] == SERVER_ENV["OVERRIDE_ME"], data
    props = ssr_props(shared, "/ssr")
    assert props["dotenv"] == "dotenv-loaded-7a1", props
    assert props["override"] == SERVER_ENV["OVERRIDE_ME"], props


@pytest.mark.parametrize("path", ["/.env", "/%2Eenv", "/%2eenv", "/.env?download=1", "/public/.env", "/./.env"])
def test_dotenv_is_never_served(shared: Server, path: str) -> None:
    for resp in (shared.get(path), shared.head(path)):
        assert resp.status != 200 and resp.status < 500, f"{path}: {resp.describe()}"
        for secret in (DOTENV_SECRET, PUBLIC_DOTENV_SECRET, "FROM_DOTENV", "dotenv-loaded-7a1"):
            assert secret not in resp.text, f"{path} leaks .env:\n{resp.describe()}"


def test_dotenv_values_do_not_leak_into_error_bodies(shared: Server) -> None:
    resp = shared.get("/api/fail?mode=raise")
    assert_api_error(resp, 500, "FUNCTION_INVOCATION_FAILED", shared)
    assert "dotenv-loaded-7a1" not in resp.text and json.dumps(SERVER_ENV) not in resp.text
