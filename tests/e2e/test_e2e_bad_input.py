"""Bad input: broken page modules, missing templates, malformed isr.json, unknown site
folders and hostile URLs get clear errors, never a traceback or a file outside `public/`,
and the server keeps serving (issue item 10)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import pytest

from e2e_support import (
    TRACEBACK,
    Server,
    Site,
    assert_no_leak,
    cli_output,
    free_port,
)

BROKEN_IMPORT = '''"""A page whose import fails. PAGE-SOURCE-MARKER-8f3b"""
import module_that_does_not_exist_e2e  # noqa: F401

revalidate = 60


def get_static_props(ctx):
    return {"props": {}}
'''
BROKEN_SYNTAX = '''"""A page that is not valid Python. PAGE-SOURCE-MARKER-8f3b"""
def get_static_props(ctx)
    return {"props": {}}
'''
BROKEN_RAISES = '''"""A page that raises while being imported. PAGE-SOURCE-MARKER-8f3b"""
raise RuntimeError("boom at import time")
'''
MISSING_TEMPLATE = '''"""A page whose template does not exist. PAGE-SOURCE-MARKER-8f3b"""
revalidate = 60
template = "does_not_exist.html"


def get_static_props(ctx):
    return {"props": {"value": "x"}}
'''
PATHS_RAISE = '''"""get_static_paths fails. PAGE-SOURCE-MARKER-8f3b"""
revalidate = 60


def get_static_paths():
    raise RuntimeError("the paths source is down")


def get_static_props(ctx):
    return {"props": {}}
'''
BROKEN_MODULES = {"import": BROKEN_IMPORT, "syntax": BROKEN_SYNTAX, "raises": BROKEN_RAISES}
BAD_CONFIGS = {
    "syntax": '{"functions": {"pages/*.py": {"memory": 512,}',
    "not-an-object": "[1, 2, 3]",
    "wrong-type": '{"defaults": {"maxDuration": "soon"}}',
}


def assert_clean_failure(proc: subprocess.CompletedProcess[str], needle: str, max_lines: int = 3) -> None:
    """Non-zero exit, no traceback, and a short error that names `needle`."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"expected a failure\n{cli_output(proc)}"
    assert TRACEBACK not in output and 'File "' not in output, f"traceback\n{cli_output(proc)}"
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, f"failed without saying why\n{cli_output(proc)}"
    assert len(lines) <= max_lines, f"not a one-line error\n{cli_output(proc)}"
    assert any(needle.lower() in line.lower() for line in lines), (
        f"the error does not name {needle!r}\n{cli_output(proc)}"
    )


def serve_cli(site: Site, site_arg: str) -> subprocess.CompletedProcess[str]:
    """`isr serve` that is expected to refuse to start (it must exit within 20 s)."""
    return site.cli(
        "serve", site_arg, "--host", "127.0.0.1", "--port", str(free_port()),
        "--cache", str(site.cache), timeout=20,
    )  # fmt: skip


def run_command(site: Site, command: str, site_arg: str) -> subprocess.CompletedProcess[str]:
    if command == "serve":
        return serve_cli(site, site_arg)
    if command == "build":
        return site.cli("build", site_arg, "--cache", str(site.cache))
    return site.cli(command, site_arg)


# ------------------------------------------------------------------ site folder


@pytest.mark.parametrize("command", ["build", "routes", "serve"])
def test_unknown_site_folder(site: Site, command: str) -> None:
    missing = site.workdir / "no-such-site-e2e"
    proc = run_command(site, command, str(missing))
    assert_clean_failure(proc, "no-such-site-e2e")


@pytest.mark.parametrize("command", ["build", "routes", "serve"])
def test_site_that_is_a_file(site: Site, command: str) -> None:
    a_file = site.workdir / "not-a-folder-e2e.txt"
    a_file.write_text("hello")
    proc = run_command(site, command, str(a_file))
    assert_clean_failure(proc, "not-a-folder-e2e")


@pytest.mark.parametrize("command", ["build", "routes", "serve"])
def test_folder_without_pages_is_not_a_site(site: Site, command: str) -> None:
    empty = site.workdir / "empty-folder-e2e"
    empty.mkdir()
    proc = run_command(site, command, str(empty))
    assert_clean_failure(proc, "pages")


# -------------------------------------------------------------------- isr.json


@pytest.mark.parametrize("command", ["build", "routes", "serve"])
@pytest.mark.parametrize("config", sorted(BAD_CONFIGS))
def test_malformed_isr_json(site: Site, command: str, config: str) -> None:
    (site.root / "isr.json").write_text(BAD_CONFIGS[config])
    proc = run_command(site, command, str(site.root))
    assert_clean_failure(proc, "isr.json")
    assert site.render_tags() == []


# ----------------------------------------------------------- broken page modules


@pytest.mark.parametrize("kind", sorted(BROKEN_MODULES))
def test_build_with_a_page_module_that_fails_to_import(site: Site, kind: str) -> None:
    (site.pages / "broken.py").write_text(BROKEN_MODULES[kind])
    proc = run_command(site, "build", str(site.root))
    # `build` may print its header and table before the error line.
    assert_clean_failure(proc, "broken", max_lines=40)
    assert "PAGE-SOURCE-MARKER" not in proc.stdout + proc.stderr


def test_routes_rejects_a_page_module_that_is_not_python(site: Site) -> None:
    (site.pages / "broken.py").write_text(BROKEN_MODULES["syntax"])
    proc = run_command(site, "routes", str(site.root))
    assert_clean_failure(proc, "broken", max_lines=3)
    assert "PAGE-SOURCE-MARKER" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("kind", ["import", "raises"])
def test_routes_runs_no_page_code(site: Site, kind: str) -> None:
    """`isr routes` reads modules without running them (documented), so a module that only
    fails when imported is listed; `build` and the first request report the failure."""
    (site.pages / "broken.py").write_text(BROKEN_MODULES[kind])
    proc = run_command(site, "routes", str(site.root))
    assert proc.returncode == 0, cli_output(proc)
    assert "/broken" in proc.stdout and "PAGE-SOURCE-MARKER" not in proc.stdout + proc.stderr
    assert site.render_tags() == []


@pytest.mark.parametrize("kind", sorted(BROKEN_MODULES))
def test_serve_with_a_page_module_that_fails_to_import(
    site: Site, serve: Callable[..., Server], kind: str
) -> None:
    """Either `isr serve` refuses to start with a one-line error, or it serves every other
    page and answers the broken one with a 5xx without a traceback."""
    (site.pages / "broken.py").write_text(BROKEN_MODULES[kind])
    server = serve(start=False)
    proc = server.spawn()
    deadline = time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            server.get("/__e2e_probe__", timeout=2)
            break
        except OSError:
            time.sleep(0.1)
    if proc.poll() is not None:
        output = server.output()
        assert proc.returncode != 0, output
        assert TRACEBACK not in output, output
        lines = [line for line in output.splitlines() if line.strip()]
        assert any("broken" in line for line in lines), output
        assert len(lines) <= 3, f"not a one-line error:\n{output}"
        return
    resp = server.get("/broken")
    assert 500 <= resp.status < 600, resp.describe()
    assert_no_leak(resp.body)
    assert server.page("/").cache in ("MISS", "HIT")
    assert server.page("/blog/hello").status == 200


def test_build_when_get_static_paths_raises(site: Site) -> None:
    (site.pages / "paths_boom").mkdir()
    (site.pages / "paths_boom" / "[id].py").write_text(PATHS_RAISE)
    (site.pages / "paths_boom" / "[id].html").write_text("<html><body>x</body></html>\n")
    proc = site.cli("build", str(site.root), "--cache", str(site.cache))
    assert_clean_failure(proc, "paths_boom", max_lines=60)


def test_build_with_a_missing_template(site: Site) -> None:
    (site.pages / "notemplate.py").write_text(MISSING_TEMPLATE)
    proc = site.cli("build", str(site.root), "--cache", str(site.cache))
    assert_clean_failure(proc, "does_not_exist.html", max_lines=60)


def test_serve_with_a_missing_template_answers_500_and_keeps_serving(
    site: Site, serve: Callable[..., Server]
) -> None:
    (site.pages / "notemplate.py").write_text(MISSING_TEMPLATE)
    server = serve()
    for _ in range(2):  # a failed first render stores nothing: the second fails the same way
        resp = server.get("/notemplate")
        assert resp.status == 500, resp.describe()
        assert_no_leak(resp.body)
    assert server.page("/").status == 200
    assert server.page("/robots.txt").status == 200


def test_render_exception_answers_500_and_keeps_serving(server: Server, site: Site) -> None:
    site.control("boom", fail=True)
    for path in ("/ctl/boom", "/ctl/boom", "/ctl/boom?x=1"):
        resp = server.get(path)
        assert resp.status == 500, resp.describe()
        assert resp.header("x-isr-error-code") == "FUNCTION_INVOCATION_FAILED", resp.describe()
        assert_no_leak(resp.body)
    assert server.page("/about").status == 200


# ---------------------------------------------------------------- hostile URLs


HOSTILE_PATHS = [
    "/../.env",
    "/../../../../../../etc/passwd",
    "/%2e%2e/.env",
    "/%2E%2E/isr.json",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/.%2e/.env",
    "/..%2f.env",
    "/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/css/../../.env",
    "/css/..%2f..%2f.env",
    "/css/%2e%2e/%2e%2e/.env",
    "/css/%2e%2e/%2e%2e/pages/about.py",
    "/%2e%2e%5c.env",
    "/..\\.env",
    "/css/..\\..\\.env",
    "/%252e%252e/.env",
    "/css/%252e%252e/%252e%252e/.env",
    "/robots.txt%00",
    "/robots.txt%00.html",
    "/.env%00.txt",
    "/%00",
    "/blog/%00",
    "/blog/a%00b",
    "/blog/%2e%2e",
    "/blog/..%2f..%2f.env",
    "/blog/%2e%2e%2f%2e%2e%2f.env",
    "/docs/%2e%2e/%2e%2e/.env",
    "/docs/a/%2e%2e/%2e%2e/isr.json",
    "/docs/a%2f..%2f..%2f.env",
    "/blog/a%2Fb",
    "/blog/a%2fb",
    "/blog/%2F.env",
    "//etc/passwd",
    "/.env",
    "/.hidden",
    "/pages/about.py",
    "/pages/_lib/util.py",
    "/site/.env",
    "/_isr/data/x/..%2f..%2f.env.json",
    "/_isr/data/%2e%2e/%2e%2e/.env",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_path_gets_4xx_and_no_file(shared_server: Server, path: str) -> None:
    resp = shared_server.get(path)
    assert resp.status in (400, 403, 404), f"{path}: {resp.describe()}"
    assert_no_leak(resp.body)
    assert "ROBOTS-MARKER" not in resp.text, f"{path} served robots.txt"
    assert shared_server.get("/robots.txt").status == 200, "the server stopped serving"


def test_hostile_paths_render_nothing(shared_server: Server) -> None:
    for path in ("/blog/%2e%2e", "/blog/a%00b", "/blog/..%2f..%2f.env", "/docs/%2e%2e/x",
                 "/blog/a%2Fb"):  # fmt: skip
        shared_server.get(path)
    tags = shared_server.site.render_tags()
    bad = [t for t in tags if ".." in t or "\x00" in t or ".env" in t or t == "blog:a/b"]
    assert bad == [], f"a data function ran for a hostile path: {bad}"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET ../.env HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /\x00.env HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /../../etc/passwd HTTP/1.0\r\n\r\n",
        b"GET /%zz%2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /blog/" + b"%2e%2e%2f" * 3000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ],
    ids=["relative", "nul-byte", "http10-dotdot", "bad-escape", "garbage", "huge-path", "huge-dotdot"],
)
def test_malformed_request_lines(shared_server: Server, raw: bytes) -> None:
    data = b""
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=10) as sock:
        try:
            sock.sendall(raw)
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            pass  # the server may answer and close before reading everything
    if data:
        status = int(data.split(b" ", 2)[1])
        assert 400 <= status < 500, data[:500]
    assert_no_leak(data)
    assert shared_server.get("/robots.txt").status == 200, "the server stopped serving"


def test_server_keeps_serving_after_hostile_input(shared_server: Server) -> None:
    assert shared_server.page("/").status == 200
    assert "ABOUT-PAGE" in shared_server.page("/about").text
    assert shared_server.proc is not None and shared_server.proc.poll() is None

