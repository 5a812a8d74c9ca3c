"""`isr build`: build id, every get_static_paths, prerendering into the cache, the route
table (issue item 3)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import pytest

from e2e_support import (
    REPO,
    TRACEBACK,
    Server,
    Site,
    cells,
    cli_output,
    data_path,
    embedded_data,
    route_line,
)

# What `isr build` renders for the basic site (render-log tags), each exactly once.
PRERENDERED = Counter(
    ["index", "about", "big", "override", "gone", "xss",
     "blog:hello", "blog:world", "blog:third", "blog:a b", "blog:café", "ff:a", "ff:b", "docs:intro", "docs:guide/install"]
)  # fmt: skip
CLI_TIMEOUT = 120
SIZE_RE = re.compile(r"\d+(\.\d+)?\s*(B|kB|KB|KiB|MB|MiB)\b")
TIME_RE = re.compile(r"\d+(\.\d+)?\s*(ms|s)\b")


@pytest.fixture
def site(site: Site) -> Site:
    """The basic site without its redirect pages: Next.js refuses a redirect returned at build
    time, and the contract is silent on it, so the build tests do not depend on it."""
    for name in ("moved.py", "moved.html", "moved_perm.py", "moved_perm.html"):
        (site.pages / name).unlink()
    return site


def build(site: Site) -> str:
    proc = site.cli("build", str(site.root), "--cache", str(site.cache))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, cli_output(proc)
    assert TRACEBACK not in output, cli_output(proc)
    return proc.stdout + "\n" + proc.stderr


def test_build_prerenders_every_static_path_once(site: Site) -> None:
    build(site)
    rendered = Counter(site.render_tags())
    assert rendered == PRERENDERED, f"build rendered {dict(rendered)}"


def test_served_pages_come_from_the_build(site: Site, serve: Callable[..., Server]) -> None:
    build(site)
    renders = site.render_tags()
    server = serve()
    for path in ("/", "/about", "/static", "/big", "/xss", "/blog/hello", "/blog/world",
                 "/blog/third", "/ff/a", "/ff/b", "/docs/intro", "/docs/guide/install"):  # fmt: skip
        resp = server.page(path)
        assert resp.cache == "HIT", f"{path} was not prerendered: {resp.describe()}"
    gone = server.get("/gone")
    assert gone.status == 404 and gone.cache == "HIT", gone.describe()
    assert site.render_tags() == renders, "serving prerendered pages rendered them again"

    # Paths from get_static_paths that need percent-encoding in a URL are the same records.
    for path in ("/blog/a%20b", "/blog/caf%C3%A9", "/blog/caf%c3%a9"):
        resp = server.page(path)
        assert resp.cache == "HIT", f"{path} was not prerendered: {resp.describe()}"
    assert site.render_tags() == renders, "serving prerendered pages rendered them again"

    # Both variants of a prerendered page are one generation.
    html = server.page("/blog/hello")
    embedded = embedded_data(html.text)
    data = server.page(data_path(embedded["build_id"], "/blog/hello"))
    assert data.cache == "HIT" and data.generation == html.generation
    assert data.json() == embedded

    new = server.page("/blog/not-prerendered")
    assert new.cache == "MISS"
    assert server.get("/ff/c").status == 404


def test_build_prints_the_route_table(site: Site) -> None:
    output = build(site)
    lowered = output.lower()
    for heading in ("route", "kind", "revalidate", "fallback"):
        assert heading in lowered, f"no {heading!r} column:\n{output}"

    def row(route: str) -> list[str]:
        return cells(route_line(output, route))

    assert "isr" in row("/") and ({"60", "60s"} & set(row("/")))
    assert "isr" in row("/about")
    assert "static" in row("/static")
    assert "ssr" in row("/ssr")
    assert "api" in row("/api/ping")
    blog = row("/blog/[slug]")
    assert "isr" in blog and "blocking" in blog and "5" in blog, blog
    assert "false" in row("/ff/[id]") and "2" in row("/ff/[id]")
    assert "true" in row("/ft/[id]") and "0" in row("/ft/[id]")
    ctl = row("/ctl/[name]")
    assert "blocking" in ctl and "0" in ctl and ({"1", "1s"} & set(ctl)), ctl
    assert "2" in row("/docs/[...path]")
    about = route_line(output, "/about")
    assert SIZE_RE.search(about), f"no size in {about!r}"
    assert TIME_RE.search(about), f"no build time in {about!r}"
    for cell in cells(output):
        assert not cell.startswith(("/_lib", "/_layout", "_lib", "_layout")), (
            f"{cell!r} is listed as a route:\n{output}"
        )


def test_build_id_follows_code_and_templates(site: Site, serve: Callable[..., Server]) -> None:
    build(site)
    server = serve()
    first_id = server.build_id("/about")
    assert "ABOUT-PAGE" in server.page("/about").text
    server.stop()

    build(site)  # nothing changed: same build id, cached pages still served
    server.start()
    assert server.build_id("/about") == first_id
    assert server.page("/about").cache == "HIT"
    server.stop()

    template = site.pages / "about.html"
    template.write_text(template.read_text().replace("ABOUT-PAGE", "ABOUT-PAGE-TEMPLATE-V2"))
    build(site)
    server.start()
    page = server.page("/about")
    second_id = embedded_data(page.text)["build_id"]
    assert second_id != first_id, "changing a template did not change the build id"
    assert "ABOUT-PAGE-TEMPLATE-V2" in page.text, "served a page rendered from the old template"
    old = server.get(data_path(first_id, "/about"))
    assert old.status == 404, f"JSON of an old build id: {old.describe()}"
    server.stop()

    module = site.pages / "about.py"
    module.write_text(module.read_text().replace('"about-1"', '"about-code-v2"'))
    build(site)
    server.start()
    page = server.page("/about")
    assert embedded_data(page.text)["build_id"] not in (first_id, second_id)
    assert "VALUE=[about-code-v2]" in page.text, "served a page generated by the old code"


def test_helper_code_beside_pages_is_part_of_the_build(site: Site, serve: Callable[..., Server]) -> None:
    """A page importing a helper package beside pages/ is regenerated when the helper changes."""
    helpers = site.root / "sitelib_e2e"
    helpers.mkdir()
    (helpers / "__init__.py").write_text('GREETING = "HELPER-V1"\n')
    (site.pages / "helper.py").write_text(
        "import sitelib_e2e\n\nrevalidate = False\n\n\n"
        "def get_static_props(ctx):\n    return {'props': {'value': sitelib_e2e.GREETING}}\n"
    )
    (site.pages / "helper.html").write_text("<html><body><p>VALUE=[{{ value }}]</p></body></html>\n")
    build(site)
    server = serve()
    first = server.page("/helper")
    assert "VALUE=[HELPER-V1]" in first.text
    server.stop()

    (helpers / "__init__.py").write_text('GREETING = "HELPER-V2"\n')
    build(site)
    server.start()
    page = server.page("/helper")
    assert embedded_data(page.text)["build_id"] != embedded_data(first.text)["build_id"]
    assert "VALUE=[HELPER-V2]" in page.text, "served a page generated by the old helper code"


def test_serve_without_build_computes_the_same_build_id(site: Site, serve: Callable[..., Server]) -> None:
    server = serve()
    served_id = server.build_id("/about")
    server.stop()
    site.cache = site.workdir / "cache-2"
    build(site)
    server.start()
    assert server.build_id("/about") == served_id
    assert server.page("/about").cache == "HIT"


def test_build_defaults_to_the_current_folder(site: Site) -> None:
    proc = site.cli("build", "--cache", str(site.cache), cwd=site.root)
    assert proc.returncode == 0, cli_output(proc)
    assert Counter(site.render_tags()) == PRERENDERED
    assert "/blog/[slug]" in proc.stdout + proc.stderr


def test_build_shows_a_progress_bar_on_a_terminal(site: Site) -> None:
    """On a terminal `isr build` shows its progress while prerendering."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "isr", "build", str(site.root), "--cache", str(site.cache)],
            cwd=REPO, env=site.env(), stdin=terminal, stdout=terminal, stderr=terminal,
        )  # fmt: skip
    finally:
        os.close(terminal)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
        code = proc.wait(CLI_TIMEOUT)
    output = b"".join(chunks).decode("utf-8", "replace")
    assert code == 0, output
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    assert re.search(r"100\s*%|\b(\d+)/\1\b", plain), f"no progress shown:\n{plain[:3000]}"
    assert Counter(site.render_tags()) == PRERENDERED
