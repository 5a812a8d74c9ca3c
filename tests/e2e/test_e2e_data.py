"""The JSON variant `/_isr/data/<build_id>/<path>.json` and the data embedded in the HTML:
same generation, same object, and no prop value escapes the `<script>` tag (issue item 5)."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from e2e_support import (
    Server,
    Site,
    data_path,
    embedded_data,
    rendered_value,
)


@pytest.fixture
def server(shared_server: Server) -> Server:
    """This module's tests share one server; each uses its own paths."""
    return shared_server


@pytest.fixture
def site(shared_server: Server) -> Site:
    return shared_server.site

EVIL = "</script><script>alert('pwned')</script><!-- \u2028\u2029 & \"q\" '</SCRIPT >"
XSS_PROPS = {
    "evil": EVIL,
    "nested": {"</script><b>key": ["<img src=x onerror=alert(1)>", "&amp;", "\u2028"]},
}


def test_json_variant_equals_embedded_data(server: Server) -> None:
    html = server.page("/about")
    embedded = embedded_data(html.text)
    assert embedded["props"] == {"value": "about-1"}
    assert embedded["page"] == "/about"
    assert embedded["params"] == {}
    assert embedded["generation"] == html.generation
    assert isinstance(embedded["build_id"], str) and embedded["build_id"]

    data = server.page(data_path(embedded["build_id"], "/about"))
    assert (data.header("content-type") or "").startswith("application/json"), data.describe()
    assert data.generation == html.generation
    assert data.cache == "HIT", data.describe()
    assert data.json() == embedded


def test_index_json_is_the_home_page(server: Server) -> None:
    html = server.page("/")
    embedded = embedded_data(html.text)
    assert embedded["page"] == "/"
    data = server.page(data_path(embedded["build_id"], "/"))
    assert data.json() == embedded


def test_dynamic_page_data_has_route_and_params(server: Server) -> None:
    html = server.page("/blog/hello")
    embedded = embedded_data(html.text)
    assert embedded["page"] == "/blog/[slug]"
    assert embedded["params"] == {"slug": "hello"}
    assert embedded["props"] == {"slug": "hello", "value": "post-hello"}
    data = server.page(data_path(embedded["build_id"], "/blog/hello"))
    assert data.json() == embedded

    docs = embedded_data(server.page("/docs/guide/install").text)
    assert docs["page"] == "/docs/[...path]"
    assert docs["params"] == {"path": ["guide", "install"]}


def test_json_request_for_a_new_path_generates_both_variants(server: Server, site: Site) -> None:
    build_id = server.build_id("/about")
    data = server.page(data_path(build_id, "/blog/json-first"))
    assert data.cache == "MISS", data.describe()
    assert data.json()["props"] == {"slug": "json-first", "value": "post-json-first"}
    html = server.page("/blog/json-first")
    assert html.cache == "HIT", html.describe()
    assert html.generation == data.generation
    assert embedded_data(html.text) == data.json()
    assert site.count("blog:json-first") == 1


def test_data_urls_of_other_builds_or_no_page_are_404(server: Server) -> None:
    build_id = server.build_id("/about")
    for url in (
        data_path("not-the-build-id", "/about"),
        data_path(build_id + "x", "/about"),
        f"/_isr/data/{build_id}/about",  # no .json
        f"/_isr/data/{build_id}/no/such/page.json",
        "/_isr/data/",
        f"/_isr/data/{build_id}.json",
    ):
        resp = server.get(url)
        assert resp.status == 404, f"{url}: {resp.describe()}"


def test_no_prop_value_breaks_out_of_the_data_script(server: Server) -> None:
    html = server.page("/xss").text
    # The only script elements are the ones the engine wrote; the prop did not open one.
    assert "alert('pwned')</script>" not in html
    assert "<script>alert" not in html.lower()
    assert "<img src=x" not in html
    opened = len(re.findall(r"<script\b", html, re.I))
    closed = len(re.findall(r"</script", html, re.I))
    assert opened == closed, f"{opened} <script> vs {closed} </script>:\n{html}"

    # The embedded JSON has no raw < > & U+2028 U+2029 at all, and parses back to the props.
    match = re.search(r"<script\b[^>]*__ISR_DATA__[^>]*>(.*?)</script", html, re.S | re.I)
    assert match, html
    raw = match.group(1)
    for char in ("<", ">", "&", "\u2028", "\u2029"):
        assert char not in raw, f"raw {char!r} in embedded data: {raw[:400]!r}"
    assert "\\u003c" in raw.lower() and "\\u2028" in raw.lower(), raw[:400]
    data = embedded_data(html)
    assert data["props"] == XSS_PROPS

    # The template itself escaped the value (Jinja autoescape).
    assert "&lt;/script&gt;&lt;script&gt;alert(" in html

    json_variant = server.page(data_path(data["build_id"], "/xss")).json()
    assert json_variant == data


def test_html_and_json_of_one_generation_are_always_equal(server: Server, site: Site) -> None:
    """Under continuous regeneration, every generation's HTML and JSON carry the same data."""
    site.control("pair", revalidate=1, pad=3000)
    first = server.page("/ctl/pair")
    build_id = embedded_data(first.text)["build_id"]
    html_seen: dict[str, list[Any]] = {}
    json_seen: dict[str, list[Any]] = {}
    problems: list[str] = []
    stop = time.monotonic() + 4.5
    lock = threading.Lock()

    def hammer(kind: str) -> None:
        try:
            fetch(kind)
        except Exception as exc:  # reported by the main thread
            problems.append(f"{kind}: {exc!r}")

    def fetch(kind: str) -> None:
        while time.monotonic() < stop:
            if kind == "html":
                resp = server.get("/ctl/pair")
            else:
                resp = server.get(data_path(build_id, "/ctl/pair"))
            if resp.status != 200 or not resp.generation:
                problems.append(f"{kind}: {resp.describe()}")
                continue
            if kind == "html":
                data = embedded_data(resp.text)
                if rendered_value(resp.text) != data["props"]["value"]:
                    problems.append(f"HTML text and its embedded data differ: {resp.describe()}")
                target = html_seen
            else:
                data = resp.json()
                target = json_seen
            if data.get("generation") != resp.generation:
                problems.append(f"{kind}: data generation {data.get('generation')} != header {resp.generation}")
            with lock:
                target.setdefault(resp.generation, []).append(data)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in ("html", "json", "html", "json")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not problems, "\n".join(problems[:5])

    both = set(html_seen) & set(json_seen)
    assert len(both) >= 2, (
        f"expected several regenerations while hammering; generations seen: "
        f"html={list(html_seen)} json={list(json_seen)}"
    )
    for generation in set(html_seen) | set(json_seen):
        variants = html_seen.get(generation, []) + json_seen.get(generation, [])
        assert all(v == variants[0] for v in variants), (
            f"generation {generation} served different data:\n"
            + "\n".join(str(v.get("props", {}).get("value")) for v in variants)
        )
    values_per_generation = {g: html_seen.get(g, json_seen.get(g))[0]["props"]["value"] for g in both}
    assert len(set(values_per_generation.values())) == len(values_per_generation), (
        "two generations carry the same render's data"
    )
