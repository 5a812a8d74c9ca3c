"""`isr routes`: the route table, without rendering anything (issue item 9)."""

from __future__ import annotations

from e2e_support import TRACEBACK, Site, cells, cli_output, route_line

ROUTES = {
    "/": "isr",
    "/about": "isr",
    "/static": "static",
    "/big": "isr",
    "/override": "isr",
    "/gone": "isr",
    "/moved": "isr",
    "/moved_perm": "isr",
    "/xss": "isr",
    "/ssr": "ssr",
    "/ssr_headers": "ssr",
    "/blog/[slug]": "isr",
    "/ctl/[name]": "isr",
    "/hang/[name]": "isr",
    "/ft/[id]": "isr",
    "/ff/[id]": "isr",
    "/docs/[...path]": "isr",
    "/shop/[[...path]]": "isr",
    "/api/ping": "api",
}


def routes(site: Site, *extra: str) -> str:
    proc = site.cli("routes", *extra)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, cli_output(proc)
    assert TRACEBACK not in output, cli_output(proc)
    return proc.stdout


def test_routes_lists_every_route_with_its_kind(site: Site) -> None:
    output = routes(site, str(site.root))
    for route, kind in ROUTES.items():
        row = cells(route_line(output, route))
        assert kind in row, f"{route}: expected kind {kind!r} in {row}"


def test_routes_shows_revalidate_and_fallback(site: Site) -> None:
    output = routes(site, str(site.root))
    lowered = output.lower()
    for heading in ("route", "kind", "revalidate", "fallback"):
        assert heading in lowered, f"no {heading!r} column:\n{output}"
    assert {"60", "60s"} & set(cells(route_line(output, "/")))
    assert {"1", "1s"} & set(cells(route_line(output, "/ctl/[name]")))
    assert "blocking" in cells(route_line(output, "/blog/[slug]"))
    assert "true" in cells(route_line(output, "/ft/[id]"))
    assert "false" in cells(route_line(output, "/ff/[id]"))


def test_routes_does_not_list_private_files(site: Site) -> None:
    output = routes(site, str(site.root))
    for cell in cells(output):
        assert not cell.startswith(("/_lib", "/_layout", "_lib", "_layout")), (
            f"{cell!r} is listed as a route:\n{output}"
        )


def test_routes_renders_nothing(site: Site) -> None:
    routes(site, str(site.root))
    assert site.render_tags() == [], f"`isr routes` ran data functions: {site.render_tags()}"
    cache = site.root / "cache"
    written = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert written == [], f"`isr routes` wrote to the cache: {written}"


def test_routes_defaults_to_the_current_folder(site: Site) -> None:
    proc = site.cli("routes", cwd=site.root)
    assert proc.returncode == 0, cli_output(proc)
    assert "isr" in cells(route_line(proc.stdout, "/blog/[slug]"))
    assert site.render_tags() == []
