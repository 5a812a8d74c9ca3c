"""`isr.json` functions/defaults and what `isr routes` shows of them (issue 3, item 1)."""

from __future__ import annotations

import re

import pytest

from e2e_support import TRACEBACK, cells, cli_output, route_line
from functions_support import FnSite, site  # noqa: F401  (fixture)


def routes(fsite: FnSite) -> str:
    proc = fsite.cli("routes", str(fsite.root))
    assert proc.returncode == 0, cli_output(proc)
    assert TRACEBACK not in proc.stdout + proc.stderr, cli_output(proc)
    return proc.stdout


def row_of(output: str, route: str) -> tuple[str, list[str]]:
    line = route_line(output, route)
    return line, cells(line)


def assert_row(output: str, route: str, kind: str, memory: int, duration: int | float, bundle: str) -> None:
    line, row = row_of(output, route)
    assert kind.lower() in row, f"{route}: kind {kind!r} not shown:\n{line}\n\n{output}"
    assert re.search(rf"(?<![\w.]){memory}\s*MB\b", line, re.I), f"{route}: memory '{memory} MB' not shown:\n{line}\n\n{output}"
    assert re.search(rf"(?<![\w.]){duration:g}\s*s\b", line), f"{route}: maxDuration '{duration:g} s' not shown:\n{line}\n\n{output}"
    assert bundle.lower() in row, f"{route}: bundle {bundle!r} not shown:\n{line}\n\n{output}"


def bundle_of(output: str, route: str) -> str:
    line, row = row_of(output, route)
    found = [c for c in row if re.fullmatch(r"m\d+-d[\d.]+-c\d+", c)]
    assert len(found) == 1, f"{route}: expected one bundle name like m1024-d10-c4 in:\n{line}"
    return found[0]


def test_routes_show_kind_memory_duration_and_bundle(site: FnSite) -> None:
    output = routes(site)
    # exact file glob from the issue
    assert_row(output, "/api/slow", "API", 3008, 60, "m3008-d60-c4")
    # brackets in a glob are literal: "pages/api/items/[id].py" names that one file ...
    assert_row(output, "/api/items/[id]", "API", 512, 10, "m512-d10-c4")
    # ... and not pages/api/items/i.py (which a character class [id] would match)
    assert_row(output, "/api/items/i", "API", 1024, 10, "m1024-d10-c4")
    # "*" matches the files of one folder (also "[name].py"), not files in subfolders
    assert_row(output, "/api/timeout/spin", "API", 1024, 2, "m1024-d2-c4")
    assert_row(output, "/api/timeout/hang", "API", 1024, 2, "m1024-d2-c4")
    assert_row(output, "/api/timeout/nested/ok", "API", 1024, 10, "m1024-d10-c4")
    assert_row(output, "/regen/[name]", "ISR", 1024, 2, "m1024-d2-c4")
    assert_row(output, "/trouble", "SSR", 1024, 2, "m1024-d2-c4")
    # maxConcurrency is part of the configuration (worker processes of the bundle)
    assert_row(output, "/api/solo/queue", "API", 1024, 10, "m1024-d10-c1")
    assert_row(output, "/api/mem256", "API", 256, 10, "m256-d10-c4")
    # functions isr.json does not name get "defaults"
    assert_row(output, "/", "static", 1024, 10, "m1024-d10-c4")
    assert_row(output, "/ssr", "SSR", 1024, 10, "m1024-d10-c4")
    assert_row(output, "/api/echo", "API", 1024, 10, "m1024-d10-c4")


def test_equal_configurations_share_one_bundle_and_different_ones_do_not(site: FnSite) -> None:
    output = routes(site)
    names = ["/api/timeout/spin", "/api/timeout/hang", "/trouble", "/regen/[name]"]
    assert len({bundle_of(output, r) for r in names}) == 1, output
    defaults = ["/", "/ssr", "/api/echo", "/api/items/i", "/api/timeout/nested/ok"]
    assert len({bundle_of(output, r) for r in defaults}) == 1, output
    assert bundle_of(output, "/api/solo/queue") == bundle_of(output, "/api/solo/pid"), output
    distinct = ["/api/slow", "/api/items/[id]", "/api/timeout/spin", "/api/solo/queue", "/api/mem256", "/api/echo"]
    bundles = [bundle_of(output, r) for r in distinct]
    assert len(set(bundles)) == len(bundles), f"different configurations share a bundle: {bundles}\n{output}"


def test_defaults_fill_what_a_function_entry_leaves_out(site: FnSite) -> None:
    site.set_config({
        "functions": {
            "pages/api/timeout/*.py": {"maxDuration": 3},
            "pages/api/slow.py": {"memory": 3008, "maxDuration": 60, "maxConcurrency": 2},
            "pages/api/solo/*.py": {"memory": 512},
        },
        "defaults": {"memory": 2048, "maxDuration": 15, "revalidate": 60},
    })
    output = routes(site)
    assert_row(output, "/api/echo", "API", 2048, 15, "m2048-d15-c4")
    assert_row(output, "/ssr", "SSR", 2048, 15, "m2048-d15-c4")
    assert_row(output, "/api/timeout/spin", "API", 2048, 3, "m2048-d3-c4")
    assert_row(output, "/api/slow", "API", 3008, 60, "m3008-d60-c2")
    assert_row(output, "/api/solo/pid", "API", 512, 15, "m512-d15-c4")


def test_without_isr_json_functions_get_vercel_defaults(site: FnSite) -> None:
    (site.root / "isr.json").unlink()
    output = routes(site)
    for route, kind in [("/api/slow", "API"), ("/api/items/[id]", "API"), ("/ssr", "SSR"), ("/regen/[name]", "ISR")]:
        assert_row(output, route, kind, 1024, 10, "m1024-d10-c4")


def test_double_star_glob_crosses_folders(site: FnSite) -> None:
    site.set_config({"functions": {"pages/api/**/*.py": {"memory": 768}}})
    output = routes(site)
    for route in ["/api/echo", "/api/timeout/spin", "/api/timeout/nested/ok", "/api/items/[id]"]:
        assert_row(output, route, "API", 768, 10, "m768-d10-c4")
    assert_row(output, "/ssr", "SSR", 1024, 10, "m1024-d10-c4")
    assert_row(output, "/regen/[name]", "ISR", 1024, 10, "m1024-d10-c4")


@pytest.mark.parametrize(
    "settings",
    [
        {"memory": "lots"},
        {"maxDuration": -1},
        {"maxConcurrency": 0},
        {"maxDurration": 5},
    ],
    ids=["memory-not-a-number", "negative-duration", "zero-concurrency", "misspelt-key"],
)
def test_invalid_function_config_is_a_one_line_error(site: FnSite, settings: dict[str, object]) -> None:
    site.set_config({"functions": {"pages/api/slow.py": settings}})
    proc = site.cli("routes", str(site.root))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"invalid isr.json accepted:\n{cli_output(proc)}"
    assert TRACEBACK not in output, cli_output(proc)
    assert proc.stderr.strip() or proc.stdout.strip(), "no error message"
