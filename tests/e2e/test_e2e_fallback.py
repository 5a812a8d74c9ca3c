"""Fallback of dynamic routes for paths without a generation: blocking, True and False
(issue item 7)."""

from __future__ import annotations

import pytest

from e2e_support import (
    NO_STORE,
    Server,
    Site,
    assert_no_leak,
    concurrently,
    data_path,
    embedded_data,
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


def test_blocking_concurrent_first_requests_share_one_render(server: Server, site: Site) -> None:
    site.control("stampede", value="only-once", revalidate=60, sleep=1.5)
    results = concurrently([lambda: server.get("/ctl/stampede") for _ in range(25)])
    generations = {r.generation for r in results}
    for resp in results:
        assert resp.status == 200, resp.describe()
        assert rendered_value(resp.text) == "only-once"
        assert resp.elapsed >= 1.0, f"answered in {resp.elapsed:.2f}s before the render finished"
    assert len(generations) == 1 and None not in generations, generations
    assert sum(r.cache == "MISS" for r in results) >= 1
    assert site.count("ctl:stampede") == 1, "concurrent first requests rendered more than once"

    later = server.page("/ctl/stampede")
    assert later.cache == "HIT" and later.generation in generations
    assert site.count("ctl:stampede") == 1


def test_blocking_concurrent_html_and_json_first_requests_share_one_render(
    server: Server, site: Site
) -> None:
    build_id = server.build_id("/about")
    site.control("mixed", value="mixed-once", revalidate=60, sleep=1.5)
    url = data_path(build_id, "/ctl/mixed")
    calls = [lambda: server.get("/ctl/mixed") for _ in range(10)]
    calls += [lambda: server.get(url) for _ in range(10)]
    results = concurrently(calls)
    for resp in results:
        assert resp.status == 200, resp.describe()
    assert len({r.generation for r in results}) == 1, [r.generation for r in results]
    html, data = results[0], results[-1]
    assert embedded_data(html.text) == data.json()
    assert data.json()["props"]["value"] == "mixed-once"
    assert site.count("ctl:mixed") == 1


def test_blocking_paths_of_get_static_paths_and_new_ones(server: Server, site: Site) -> None:
    listed = server.page("/blog/world")
    assert "SLUG=[world]" in listed.text
    new = server.page("/blog/brand-new")
    assert new.cache == "MISS" and "SLUG=[brand-new]" in new.text
    assert server.page("/blog/brand-new").cache == "HIT"


def test_fallback_true_answers_at_once_with_the_fallback_page(server: Server, site: Site) -> None:
    site.control("ft-slow", value="real-data", sleep=3)
    resp = server.get("/ft/slow")
    assert resp.status == 200, resp.describe()
    assert resp.elapsed < 2.0, f"fallback page took {resp.elapsed:.2f}s (waited for the render?)"
    assert resp.cache == "MISS", resp.describe()
    assert resp.header("cache-control") == NO_STORE, resp.describe()
    assert "FALLBACK-LOADING" in resp.text, "template not rendered with fallback=True"
    assert "FT-READY" not in resp.text and "real-data" not in resp.text
    # The fallback page loads the page's JSON variant to show the real page.
    assert "<script" in resp.text and "/_isr/data/" in resp.text, resp.text

    # The JSON request waits for the generation: it never gets fallback data.
    build_id = server.build_id("/about")
    data = server.page(data_path(build_id, "/ft/slow"))
    assert data.json()["props"] == {"value": "real-data"}

    html = server.page("/ft/slow")
    assert html.cache == "HIT", html.describe()
    assert "FT-READY" in html.text and "FALLBACK-LOADING" not in html.text
    assert rendered_value(html.text) == "real-data"
    assert html.generation == data.generation
    assert embedded_data(html.text) == data.json()
    assert site.count("ft:slow") == 1, "fallback page and JSON request rendered more than once"


def test_fallback_true_concurrent_first_requests_render_once(server: Server, site: Site) -> None:
    site.control("ft-crowd", value="crowd-data", sleep=3)
    results = concurrently([lambda: server.get("/ft/crowd") for _ in range(15)])
    for resp in results:
        assert resp.status == 200, resp.describe()
        assert resp.elapsed < 2.0, f"a fallback request waited {resp.elapsed:.2f}s"
        assert "FALLBACK-LOADING" in resp.text
    page = wait_for(
        lambda: "FT-READY" in (r := server.get("/ft/crowd")).text and r,
        timeout=8, interval=0.1, what="the generated page",
    )  # fmt: skip
    assert rendered_value(page.text) == "crowd-data"
    assert site.count("ft:crowd") == 1, "concurrent fallback requests rendered more than once"


def test_a_crowd_of_first_requests_all_get_the_one_fallback_page(server: Server, site: Site) -> None:
    """100 concurrent first requests for one new path: every one gets the fallback page (never
    503), rendered once for the route, and the page is generated once."""
    site.control("ft-herd", value="herd-data", sleep=2)
    results = concurrently([lambda: server.get("/ft/herd") for _ in range(100)])
    assert sorted({r.status for r in results}) == [200], sorted(r.describe() for r in results if r.status != 200)[:3]
    assert all("FALLBACK-LOADING" in r.text for r in results)
    wait_for(lambda: "FT-READY" in server.get("/ft/herd").text, timeout=10, interval=0.1, what="the generated page")
    assert site.count("ft:herd") == 1
    other = server.get("/ft/other")  # the same fallback page serves every path of the route
    assert other.status == 200 and "FALLBACK-LOADING" in other.text


def test_fallback_true_page_switches_to_the_generated_page(server: Server, site: Site) -> None:
    site.control("ft-bg", value="bg-data", sleep=1)
    first = server.get("/ft/bg")
    assert first.status == 200 and "FALLBACK-LOADING" in first.text, first.describe()
    # Generated in the background: without any JSON request the real page appears.
    page = wait_for(
        lambda: "FT-READY" in (r := server.get("/ft/bg")).text and r,
        timeout=8, interval=0.1, what="the generated page",
    )  # fmt: skip
    assert page.status == 200 and rendered_value(page.text) == "bg-data"
    assert page.header("cache-control") != NO_STORE
    assert site.count("ft:bg") == 1


def test_fallback_true_json_first_waits_for_real_data(server: Server, site: Site) -> None:
    build_id = server.build_id("/about")
    site.control("ft-jsonfirst", value="json-data", sleep=1)
    data = server.page(data_path(build_id, "/ft/jsonfirst"))
    assert data.elapsed >= 0.9, "JSON answered before the render could have finished"
    assert data.json()["props"] == {"value": "json-data"}
    html = server.page("/ft/jsonfirst")
    assert "FT-READY" in html.text and html.generation == data.generation


def test_fallback_false_only_serves_static_paths(server: Server, site: Site) -> None:
    a = server.page("/ff/a")
    assert rendered_value(a.text) == "ff-a"
    b = server.page("/ff/b")
    assert rendered_value(b.text) == "ff-b"

    missing = server.get("/ff/zzz")
    assert missing.status == 404, missing.describe()
    assert "CUSTOM-404-PAGE" in missing.text
    assert_no_leak(missing.body)
    build_id = embedded_data(a.text)["build_id"]
    data = server.get(data_path(build_id, "/ff/zzz"))
    assert data.status == 404, data.describe()
    assert site.count("ff:zzz") == 0, "fallback False rendered a path outside get_static_paths"
    head_status, _, _ = server.raw("HEAD", "/ff/zzz")
    assert head_status == 404
