"""Routing: precedence, catch-alls, percent-decoding and unsafe segments."""

from pathlib import Path

import pytest

from isr.errors import BadPath, SiteError
from isr.site.config import SiteConfig
from isr.site.paths import data_path, join_path, segments_of, split_path
from isr.site.routes import scan_routes


def make_site(tmp_path: Path, files: list[str]) -> Path:
    for name in files:
        file = tmp_path / "pages" / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("async def get_static_props(ctx):\n    return {'props': {}}\n")
    return tmp_path


def test_split_decodes_once_and_keeps_plus() -> None:
    assert split_path("/a%20b/c+d/%252F") == ["a b", "c+d", "%2F"]
    assert split_path("/") == []


@pytest.mark.parametrize("raw", ["/../x", "/%2e%2e/x", "/a/%2F", "/a%00b", "/a//b", "/./a", "/a..b", "/%ff", "x"])
def test_split_rejects_unsafe_paths(raw: str) -> None:
    with pytest.raises(BadPath):
        split_path(raw)


def test_data_path_quotes_and_names_root_index() -> None:
    assert data_path("b1", "/") == "/_isr/data/b1/index.json"
    assert data_path("b1", "/a b/c") == "/_isr/data/b1/a%20b/c.json"
    assert join_path(["a b"]) == "/a b"


def test_static_beats_dynamic_beats_catchall(tmp_path: Path) -> None:
    site = make_site(tmp_path, ["blog/[slug].py", "blog/new.py", "blog/[...rest].py", "index.py", "blog/index.py"])
    table = scan_routes(site, SiteConfig())
    assert table.match([])[0].page == "/"  # type: ignore[index]
    assert table.match(["blog"])[0].page == "/blog"  # type: ignore[index]
    assert table.match(["blog", "new"]) == (table.by_page["/blog/new"], {})
    assert table.match(["blog", "x"]) == (table.by_page["/blog/[slug]"], {"slug": "x"})
    assert table.match(["blog", "x", "y"]) == (table.by_page["/blog/[...rest]"], {"rest": ["x", "y"]})
    assert table.match(["other"]) is None


def test_optional_catchall_bare_path_has_no_param(tmp_path: Path) -> None:
    table = scan_routes(make_site(tmp_path, ["shop/[[...path]].py"]), SiteConfig())
    assert table.match(["shop"]) == (table.by_page["/shop/[[...path]]"], {})
    assert table.match(["shop", "a", "b"])[1] == {"path": ["a", "b"]}  # type: ignore[index]


def test_required_catchall_needs_one_segment(tmp_path: Path) -> None:
    table = scan_routes(make_site(tmp_path, ["docs/[...path].py"]), SiteConfig())
    assert table.match(["docs"]) is None
    assert table.match(["docs", "a"])[1] == {"path": ["a"]}  # type: ignore[index]


def test_underscore_files_and_404_are_not_routes(tmp_path: Path) -> None:
    table = scan_routes(make_site(tmp_path, ["_lib/helper.py", "_x.py", "404.py", "a.py"]), SiteConfig())
    assert [r.page for r in table.routes] == ["/a"]


def test_duplicate_routes_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="both define the route /blog"):
        scan_routes(make_site(tmp_path, ["blog.py", "blog/index.py"]), SiteConfig())


def test_bad_segment_names_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="not a valid segment"):
        scan_routes(make_site(tmp_path, ["blog/[sl-ug].py"]), SiteConfig())


def test_segments_for_builds_paths_from_params(tmp_path: Path) -> None:
    table = scan_routes(make_site(tmp_path, ["docs/[...path].py", "b/[slug].py"]), SiteConfig())
    assert table.by_page["/docs/[...path]"].segments_for({"path": ["a", "b"]}) == ["docs", "a", "b"]
    assert table.by_page["/b/[slug]"].segments_for({"slug": "a%20b"}) == ["b", "a%20b"]  # literal, not decoded
    with pytest.raises(SiteError):
        table.by_page["/b/[slug]"].segments_for({})


def test_canonical_paths_are_never_decoded_twice() -> None:
    assert segments_of(join_path(split_path("/a/%2525"))) == ["a", "%25"]


def test_two_param_names_for_one_route_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match=r"both define the route /blog/\[slug\]"):
        scan_routes(make_site(tmp_path, ["blog/[id].py", "blog/[slug].py"]), SiteConfig())
