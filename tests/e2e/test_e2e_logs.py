"""Function logs (issue 5): one record per invocation, `isr logs` and its filters, the
disk store's timing, stats and Prometheus metrics, on tests/sites/logs.

Most tests share one server (they use their own paths and tags); the ones that count
(metrics, stats) start their own.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import NO_STORE, REPO, TRACEBACK, Server, Site, cli_output, wait_for, wait_until
from prometheus_client.parser import text_string_to_metric_families
from logs_support import (
    BOOM,
    HANG,
    HELLO,
    ISR,
    OTHER,
    POSTS,
    SSR,
    assert_record_shape,
    by_path,
    cli_records,
    has_line,
    log_folder,
    logs_site,
    seed,
    seed_record,
    stored,
    unique,
    wait_stored,
)

REVALIDATE_S = 1.0  # pages/isr/[name].py
STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """Overrides the suite's `site`: `serve`/`server` start the logs site."""
    return logs_site(tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on a copy of the logs site whose store already holds two old records:
    an API call 20 minutes old and an error two hours old (for --since)."""
    lsite = logs_site(tmp_path_factory.mktemp("logs"))
    now = time.time()
    seed(lsite, [
        seed_record("/api/boom/seeded-2h", BOOM, 500, now - 7200, "FUNCTION_INVOCATION_FAILED", ["seeded-2h"]),
        seed_record("/api/hello", HELLO, 200, now - 1200, None, ["seeded-20min"]),
    ])  # fmt: skip
    with Server(lsite).running() as server:
        yield server


@pytest.fixture
def logs(shared: Server, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The shared server (restarted if a test left it dead); its output shown on failure."""
    with shared.watched(request) as server:
        yield server


def one(records: list[dict[str, Any]], what: str, match: Any) -> dict[str, Any]:
    found = [r for r in records if match(r)]
    assert len(found) == 1, (
        f"expected exactly one record of {what}, found {len(found)}:\n"
        + "\n".join(map(str, records[-30:]))
    )
    return found[0]


# ------------------------------------------------------------------------ records


def test_each_invocation_leaves_one_record_with_its_printed_lines(logs: Server) -> None:
    site = logs.site
    tag = unique("rec")
    started = time.time()
    page = logs.page(f"/isr/{tag}")
    assert page.cache == "MISS", page.describe()
    for _ in range(3):  # HITs are not invocations: no records
        assert logs.page(f"/isr/{tag}").cache == "HIT"
    logs.page(f"/ssr?tag={tag}")
    logs.page(f"/api/hello?tag={tag}&sleep=150")
    boom = logs.get(f"/api/boom/{tag}")
    assert boom.status == 500 and boom.header("x-isr-error-code") == "FUNCTION_INVOCATION_FAILED", (
        boom.describe()
    )
    wait_stored(
        site, lambda r: has_line(r, f"boom-before:{tag}"), what="the failed API call's record"
    )
    ended = time.time()

    records = cli_records(site)
    for record in records:
        assert_record_shape(record)
    render = one(records, f"GET /isr/{tag}", lambda r: r["path"] == f"/isr/{tag}")
    ssr = one(records, f"GET /ssr?tag={tag}", lambda r: has_line(r, f"ssr-print:{tag}"))
    api = one(records, "GET /api/hello", lambda r: has_line(r, f"hello-line-1:{tag}"))
    failed = one(records, f"GET /api/boom/{tag}", lambda r: r["path"] == f"/api/boom/{tag}")

    assert (render["function"], render["kind"], render["status"], render["cache"]) == (
        ISR,
        "render",
        200,
        "MISS",
    ), render
    assert render["lines"] == [f"isr-print:{tag}", f"isr-stderr:{tag}"], render
    assert render["error"] is None, render

    assert (ssr["function"], ssr["path"], ssr["kind"], ssr["status"]) == (
        SSR,
        "/ssr",
        "ssr",
        200,
    ), ssr
    assert ssr["lines"] == [f"ssr-print:{tag}"], ssr

    assert (api["function"], api["path"], api["kind"], api["status"]) == (
        HELLO,
        "/api/hello",
        "api",
        200,
    ), api
    assert api["lines"] == [f"hello-line-1:{tag}", "hello-line-2"], (
        api
    )  # stdout and stderr, in order
    assert api["duration_ms"] >= 150, (
        f"the call slept 150 ms but its record says {api['duration_ms']} ms"
    )
    assert api["duration_ms"] < 5000, api

    assert (failed["function"], failed["kind"], failed["status"]) == (BOOM, "api", 500), failed
    assert failed["error"] == "FUNCTION_INVOCATION_FAILED", failed
    assert failed["lines"] == [f"boom-before:{tag}"], failed
    assert TRACEBACK not in " ".join(failed["lines"]), failed

    for record in (render, ssr, api, failed):
        assert started - 1 <= record["time"] <= ended + 1, record
        assert record["instance"] == render["instance"], (record, render)
    for record in (render, ssr, api):
        assert record["memory_mb"] > 0, (
            f"a successful invocation's peak memory is {record['memory_mb']} MB: {record}"
        )
        assert record["error"] is None, record


def test_a_stale_request_shows_the_served_request_and_the_regeneration(logs: Server) -> None:
    site = logs.site
    good, bad = unique("stale-ok"), unique("stale-fail")
    first = logs.page(f"/isr/{good}")
    logs.page(f"/isr/{bad}")
    generated = time.monotonic()
    site.control(f"isr-{bad}", mode="raise")
    wait_until(generated + REVALIDATE_S + 0.2)
    stale = logs.page(f"/isr/{good}")
    assert stale.cache == "STALE" and stale.generation == first.generation, stale.describe()
    assert logs.page(f"/isr/{bad}").cache == "STALE"

    regenerated = wait_stored(
        site,
        lambda r: r["path"] == f"/isr/{good}" and r["kind"] == "regenerate",
        what="the regeneration's record",
    )
    wait_stored(
        site,
        lambda r: r["path"] == f"/isr/{bad}" and r["kind"] == "regenerate",
        what="the failed regeneration's record",
    )
    records = cli_records(site)
    mine = by_path(records, f"/isr/{good}")
    kinds = sorted((r["kind"], r["cache"]) for r in mine)
    assert kinds == [("regenerate", None), ("render", "MISS"), ("render", "STALE")], mine
    served = next(r for r in mine if r["cache"] == "STALE")
    assert served["function"] == ISR and served["status"] == 200, served
    regen = regenerated[0]
    assert regen["function"] == ISR and regen["status"] == 200 and regen["error"] is None, regen
    assert regen["lines"] == [f"isr-print:{good}", f"isr-stderr:{good}"], regen
    assert regen["time"] >= served["time"] - 0.5, (served, regen)

    failed = one(
        records,
        "the failed regeneration",
        lambda r: r["path"] == f"/isr/{bad}" and r["kind"] == "regenerate",
    )
    assert failed["error"] == "FUNCTION_INVOCATION_FAILED", failed
    assert failed["lines"] == [f"isr-print:{bad}", f"isr-stderr:{bad}"], failed
    errors = cli_records(site, "--errors")
    assert any(r["path"] == f"/isr/{bad}" and r["kind"] == "regenerate" for r in errors), (
        "a failed regeneration is an error record"
    )
    assert not by_path(errors, f"/isr/{good}"), "a good regeneration is not an error record"


def test_a_timed_out_invocation_keeps_the_lines_it_printed(logs: Server) -> None:
    site = logs.site
    before = len([r for r in stored(site) if r["function"] == HANG])
    resp = logs.get("/api/hang")
    assert (
        resp.status == 504 and resp.header("x-isr-error-code") == "FUNCTION_INVOCATION_TIMEOUT"
    ), resp.describe()
    record = wait_stored(
        site, lambda r: r["function"] == HANG, count=before + 1, what="the timed-out call's record"
    )[-1]
    assert (record["kind"], record["status"], record["error"]) == (
        "api",
        504,
        "FUNCTION_INVOCATION_TIMEOUT",
    ), record
    assert record["duration_ms"] >= 900, record
    assert "hang-before" in record["lines"], (
        f"the function printed 'hang-before' (and flushed) before it hung; its record lost it: {record}"
    )


def test_a_failed_invocation_reports_its_peak_memory(logs: Server) -> None:
    site = logs.site
    tag = unique("mem")
    assert logs.get(f"/api/boom/{tag}").status == 500
    record = wait_stored(
        site, lambda r: r["path"] == f"/api/boom/{tag}", what="the failed call's record"
    )[0]
    assert record["memory_mb"] > 0, (
        f"a function that ran and raised used memory, its record says {record['memory_mb']} MB: {record}"
    )


def test_every_request_record_names_its_request_path(logs: Server) -> None:
    """The not-found page is rendered for a request too (the first 404 of every server:
    the suite's readiness probe, /__e2e_probe__): its record must say which path."""
    tag = unique("nope")
    assert logs.get(f"/nope/{tag}").status == 404
    logs.page(f"/api/hello?tag={tag}")
    wait_stored(logs.site, lambda r: has_line(r, f"hello-line-1:{tag}"))
    requests = [r for r in stored(logs.site) if r["kind"] != "paths" and r["instance"] != "seeded"]
    assert requests, "no records"
    nameless = [r for r in requests if not str(r["path"]).startswith("/")]
    assert not nameless, f"records of requests without their request path: {nameless}"


def test_records_reach_the_disk_store_within_a_second(logs: Server) -> None:
    site = logs.site
    for path in ("/api/hello?tag={}", "/api/boom/{}"):
        tag = unique("fast")
        logs.get(path.format(tag))
        answered = time.monotonic()

        def mine(record: dict[str, Any], tag: str = tag) -> bool:
            return has_line(record, f"hello-line-1:{tag}") or record["path"] == f"/api/boom/{tag}"

        wait_stored(site, mine, timeout=5)
        took = time.monotonic() - answered
        assert took < 1.0, (
            f"the record of {path.format(tag)} reached the disk store {took:.2f}s after the response"
        )


def test_a_hit_writes_no_log_record_and_touches_no_log_file(logs: Server) -> None:
    site = logs.site
    path = f"/posts/{unique('hot')}"
    assert logs.page(path).cache == "MISS"
    wait_stored(site, lambda r: r["path"] == path, what="the MISS's record")

    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in log_folder(site).rglob("*")
            if p.is_file()
        }

    def settled() -> dict[str, tuple[int, int]] | None:  # no flush pending: unchanged for 0.7 s
        before = snapshot()
        wait_until(time.monotonic() + 0.7)
        return before if snapshot() == before else None

    before = wait_for(settled, 10, interval=0, what="the log store to be quiet")
    for _ in range(200):
        resp = logs.get(path)
        assert resp.status == 200 and resp.cache == "HIT", resp.describe()
    wait_until(time.monotonic() + 1.2)  # longer than two flush intervals
    assert snapshot() == before, "200 HITs changed the log store's files"
    assert len(by_path(stored(site), path)) == 1, "a HIT left a log record"


# ------------------------------------------------------------------------ isr logs


def test_isr_logs_prints_aligned_plain_lines_with_the_printed_lines(logs: Server) -> None:
    site = logs.site
    tag = unique("human")
    logs.page(f"/isr/{tag}")
    logs.page(f"/api/hello?tag={tag}")
    logs.get(f"/api/boom/{tag}")
    logs.get("/nope-404")
    wait_stored(site, lambda r: r["path"] == f"/api/boom/{tag}")
    env = {k: v for k, v in site.env().items() if k not in ("NO_COLOR",)}
    env["TERM"] = "xterm-256color"
    proc = subprocess.run([sys.executable, "-m", "isr", "logs", str(site.root)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, cli_output(proc)
    out = proc.stdout
    assert "\x1b[" not in out, f"escape codes in output that is not a terminal:\n{out[:2000]!r}"
    lines = out.splitlines()
    heads = [line for line in lines if STAMP_RE.match(line)]
    assert len(heads) >= 4, out
    slash = {line.index(" /") for line in heads if " /" in line}
    ms = {line.index(" ms ") for line in heads}
    assert len(slash) == 1 and len(ms) == 1, "columns are not aligned:\n" + "\n".join(heads)
    for name, path, printed in (("render", f"/isr/{tag}", f"isr-print:{tag}"), ("api", "/api/hello", f"hello-line-1:{tag}"),
                                ("api", f"/api/boom/{tag}", f"boom-before:{tag}")):  # fmt: skip
        at = next((i for i, line in enumerate(lines) if printed in line), None)
        assert at is not None, f"{printed!r} is not printed:\n{out}"
        head = next(line for line in reversed(lines[:at]) if STAMP_RE.match(line))
        assert path in head and name in head, (
            f"{printed!r} is not under the record of {path}:\n{out}"
        )
    boom = next(line for line in heads if f"/api/boom/{tag}" in line)
    assert "500" in boom and "FUNCTION_INVOCATION_FAILED" in boom and BOOM in boom, boom


def test_isr_logs_filters_by_function_errors_and_age(logs: Server) -> None:
    site = logs.site
    tag = unique("filter")
    logs.page(f"/api/hello?tag={tag}")
    logs.page(f"/api/other?tag={tag}")
    logs.get(f"/api/boom/{tag}")
    wait_stored(site, lambda r: r["path"] == f"/api/boom/{tag}")
    wait_stored(site, lambda r: has_line(r, f"other-print:{tag}"))
    now = time.time()

    everything = cli_records(site)
    assert any(has_line(r, "seeded-20min") for r in everything), "a record 20 minutes old is kept"
    assert any(has_line(r, "seeded-2h") for r in everything), "an error two hours old is kept"
    assert any(has_line(r, f"hello-line-1:{tag}") for r in everything)
    assert [r["time"] for r in everything] == sorted(r["time"] for r in everything), (
        "records are not oldest first"
    )

    other = cli_records(site, "--function", OTHER)
    assert other and all(r["function"] == OTHER for r in other), other
    assert any(has_line(r, f"other-print:{tag}") for r in other), other
    hello = cli_records(site, "--function", HELLO)
    assert all(r["function"] == HELLO for r in hello)
    assert any(has_line(r, "seeded-20min") for r in hello) and any(
        has_line(r, f"hello-line-1:{tag}") for r in hello
    )

    errors = cli_records(site, "--errors")
    assert errors and all(r["status"] >= 500 or r["error"] for r in errors), errors
    assert any(r["path"] == f"/api/boom/{tag}" for r in errors) and any(
        has_line(r, "seeded-2h") for r in errors
    )
    assert not any(has_line(r, f"hello-line-1:{tag}") for r in errors)

    recent = cli_records(site, "--since", "10m")
    assert recent and all(r["time"] >= now - 600 - 5 for r in recent), [
        r for r in recent if r["time"] < now - 605
    ]
    assert not any(has_line(r, "seeded-20min") or has_line(r, "seeded-2h") for r in recent)
    assert any(has_line(r, f"hello-line-1:{tag}") for r in recent)
    hour = cli_records(site, "--since", "1h")
    assert any(has_line(r, "seeded-20min") for r in hour) and not any(
        has_line(r, "seeded-2h") for r in hour
    )

    both = cli_records(site, "--errors", "--function", BOOM, "--since", "10m")
    assert both and all(r["function"] == BOOM and r["status"] == 500 for r in both), both
    assert any(r["path"] == f"/api/boom/{tag}" for r in both) and not any(
        has_line(r, "seeded-2h") for r in both
    )
    assert cli_records(site, "--function", "pages/nothing.py") == []

    bad = site.cli("logs", str(site.root), "--since", "ten minutes")
    assert bad.returncode != 0 and TRACEBACK not in bad.stderr, cli_output(bad)
    assert "--since" in bad.stderr, cli_output(bad)


def test_isr_logs_on_a_site_that_never_ran_says_so(tmp_path: Path) -> None:
    fresh = logs_site(tmp_path)
    proc = fresh.cli("logs", str(fresh.root))
    assert proc.returncode != 0, cli_output(proc)
    assert TRACEBACK not in proc.stderr and proc.stderr.strip(), cli_output(proc)
    assert len(proc.stderr.strip().splitlines()) == 1, cli_output(proc)


def test_isr_build_logs_get_static_paths_and_prerenders(site: Site) -> None:
    proc = site.cli("build", str(site.root), "--cache", str(site.cache))
    assert proc.returncode == 0, cli_output(proc)
    records = cli_records(site)
    for record in records:
        assert_record_shape(record)
    paths = [r for r in records if r["kind"] == "paths" and r["function"] == POSTS]
    assert len(paths) == 1, records
    assert (paths[0]["function"], paths[0]["status"], paths[0]["error"]) == (POSTS, 200, None), (
        paths[0]
    )
    assert paths[0]["lines"] == ["paths-print:posts"], paths[0]
    for post in ("one", "two"):
        render = one(
            records, f"the prerender of /posts/{post}", lambda r, p=post: r["path"] == f"/posts/{p}"
        )
        assert (render["function"], render["kind"], render["status"]) == (POSTS, "render", 200), (
            render
        )
        assert render["lines"] == [f"post-print:{post}"], render
    assert cli_records(site, "--function", POSTS) == [r for r in records if r["function"] == POSTS]


# ---------------------------------------------------------------- stats and metrics


def metric(families: dict[str, Any], sample: str, **labels: str) -> float | None:
    for family in families.values():
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def test_metrics_and_stats_count_what_happened(server: Server) -> None:
    m1, m2 = "/isr/metrics-1", "/isr/metrics-2"
    assert server.page(m1).cache == "MISS"
    generated = time.monotonic()
    assert server.page(m2).cache == "MISS"
    for _ in range(3):
        assert server.page(m1).cache == "HIT"
    server.page("/api/hello")
    server.page("/api/hello")
    server.page("/api/hello?sleep=150")
    assert server.get("/api/boom/metrics").status == 500
    server.page("/ssr")
    wait_until(generated + REVALIDATE_S + 0.2)
    assert server.page(m1).cache == "STALE"

    def regenerated() -> bool:
        logs = server.page("/_isr/logs").json()
        return any(r["path"] == m1 and r["kind"] == "regenerate" for r in logs)

    wait_for(regenerated, 10, what="the regeneration of /isr/metrics-1")

    resp = server.page("/_isr/metrics")
    assert (resp.header("content-type") or "").startswith("text/plain"), resp.describe()
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    expect = {
        ("isr_requests_total", (("cache", "HIT"),)): 3,
        ("isr_requests_total", (("cache", "MISS"),)): 2,
        ("isr_requests_total", (("cache", "STALE"),)): 1,
        (
            "isr_invocations_total",
            (("function", ISR), ("outcome", "ok")),
        ): 3,  # 2 renders + 1 regeneration
        ("isr_invocations_total", (("function", HELLO), ("outcome", "ok"))): 3,
        ("isr_invocations_total", (("function", SSR), ("outcome", "ok"))): 1,
        (
            "isr_invocations_total",
            (("function", BOOM), ("outcome", "FUNCTION_INVOCATION_FAILED")),
        ): 1,
        ("isr_invocation_duration_seconds_count", (("function", HELLO),)): 3,
        ("isr_invocation_duration_seconds_bucket", (("function", HELLO), ("le", "0.1"))): 2,
        ("isr_invocation_duration_seconds_bucket", (("function", HELLO), ("le", "+Inf"))): 3,
        ("isr_regenerations_total", (("outcome", "ok"),)): 1,
        ("isr_regenerations_total", (("outcome", "failed"),)): 0,
        ("isr_cache_records", ()): 2,
    }
    got = {key: metric(families, key[0], **dict(key[1])) for key in expect}
    assert got == expect, f"metrics differ from what was done:\n{resp.text}"
    assert (metric(families, "isr_invocation_duration_seconds_sum", function=HELLO) or 0) >= 0.15
    assert (metric(families, "isr_cache_bytes") or 0) > 0

    stats = server.page("/_isr/stats").json()
    rows = {f["file"]: f for f in stats["functions"]}
    assert set(rows) >= {ISR, HELLO, OTHER, BOOM, SSR, POSTS, HANG}, rows
    for row in rows.values():
        assert {"route", "kind", "bundle", "invocations", "errors", "p50_ms", "p99_ms"} <= set(
            row
        ), row
    assert (
        rows[ISR]["route"],
        rows[ISR]["kind"],
        rows[ISR]["invocations"],
        rows[ISR]["errors"],
    ) == ("/isr/[name]", "ISR", 3, 0), rows[ISR]
    assert (rows[HELLO]["invocations"], rows[HELLO]["errors"]) == (3, 0), rows[HELLO]
    assert rows[HELLO]["p99_ms"] >= 150 > rows[HELLO]["p50_ms"], rows[HELLO]
    assert (rows[BOOM]["invocations"], rows[BOOM]["errors"]) == (1, 1), rows[BOOM]
    assert (rows[OTHER]["invocations"], rows[OTHER]["errors"]) == (0, 0), rows[OTHER]
    assert rows[HANG]["bundle"] != rows[HELLO]["bundle"], "different maxDuration, different bundle"
    cache = stats["cache"]
    assert (cache["hit"], cache["stale"], cache["miss"]) == (3, 1, 2), cache
    assert cache["hit_ratio"] == pytest.approx(0.5), cache
    assert (cache["regenerations"], cache["failures"], cache["records"]) == (1, 0, 2), cache
    assert cache["bytes"] > 0, cache


def test_dashboard_page_on_loopback_needs_no_token(server: Server) -> None:
    page = server.page("/_isr/")
    assert (page.header("content-type") or "").startswith("text/html"), page.describe()
    assert page.header("cache-control") == NO_STORE, page.describe()
    html = page.text
    for needle in (
        'id="functions"',
        'id="filter"',
        'id="stream"',
        'id="cache"',
        "EventSource",
        "/_isr/logs",
    ):
        assert needle in html, f"{needle!r} missing from the dashboard"
    for path in ("/_isr/stats", "/_isr/metrics", "/_isr/logs"):
        server.page(path)  # the site's .env sets a token: loopback ignores it
