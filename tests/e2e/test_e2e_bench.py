"""`isr bench` end to end, the real CLI as a subprocess on tests/sites/bench (/fresh revalidate 1,
/static never, /items/[id] with a and b prerendered): against a running server and against one
it starts and stops itself, its counts against the server's /_isr/metrics, staleness on
/fresh, thresholds and the exit code, --compare, --paths-from routes, and bad input.

Runs are short (1-2 s at low rates) so the file stays fast."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import REPO, TRACEBACK, Server, Site, cli_output, free_port, wait_for, wait_until

TOKEN = "bench-e2e-token"
STATES = ("HIT", "STALE", "MISS")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `isr serve` on a copy of the bench site, with a revalidate token, shared by the tests
    that load a running server (--url)."""
    site = Site.copy("bench", tmp_path_factory.mktemp("bench"))
    (site.root / ".env").write_text(f"ISR_REVALIDATE_TOKEN={TOKEN}\n")
    with Server(site).running() as server:
        yield server


@pytest.fixture
def server(live: Server, request: pytest.FixtureRequest) -> Iterator[Server]:
    with live.watched(request) as server:
        yield server


def bench(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m isr bench ARGS` as a user runs it (no ISR_ variables of this process)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ISR_")}
    environment.update(COLUMNS="200", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", **(env or {}))
    command = [sys.executable, "-m", "isr", "bench", *map(str, args)]
    return subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


def requests_by_state(server: Server) -> dict[str, int]:
    """isr_requests_total by cache state, from the server's Prometheus metrics."""
    text = server.page("/_isr/metrics").text
    found = dict(re.findall(r'^isr_requests_total\{cache="(\w+)"\} ([0-9.e+]+)$', text, re.M))
    assert set(found) == set(STATES), text
    return {state: int(float(found[state])) for state in STATES}


def report(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


# --- a running server ------------------------------------------------------------------------


def test_counts_agree_with_the_servers_metrics(server: Server, tmp_path: Path) -> None:
    """The delta of the server's requests by state over the run is what bench reports; with
    on-demand revalidations meanwhile, and thresholds that are met (exit 0)."""
    out = tmp_path / "run.json"
    before = requests_by_state(server)
    done = bench(
        "--url", server.url, "--path", "/static", "--path", "/items/a", "--path", "/items/b",
        "--rate", "50", "--duration", "2s", "--revalidate-rate", "2", "--token", TOKEN,
        "--json", out, "--threshold", "errors==0", "--threshold", "hit_ratio>0.5",
    )  # fmt: skip
    after = requests_by_state(server)
    assert done.returncode == 0, cli_output(done)
    r = report(out)
    assert r["requests"] == 100 and r["errors"] == 0, r["errors_by"]
    assert {state: after[state] - before[state] for state in STATES} == r["states"]
    assert sum(r["states"].values()) == 100
    # answers per second until the last came back: 50, or a little less when the last ones are slow
    assert 45 <= r["achieved_rate"] <= 50.01 and r["target_rate"] == 50
    assert {p["path"] for p in r["top_paths"]} == {"/static", "/items/a", "/items/b"}
    # on-demand revalidations: the new generation reached readers, and soon
    assert r["revalidations"] >= 3
    fresh = r["revalidation_to_fresh_ms"]
    assert fresh["count"] >= 1 and 0 < fresh["p99"] < 1500, fresh
    assert r["regenerations"] >= fresh["count"]
    assert re.search(r"^100 requests in 2 s: \d+ req/s of 50 asked$", done.stdout, re.M), done.stdout
    assert "thresholds: all 2 met" in done.stdout and "threshold failed" not in done.stdout
    assert "revalidations:" in done.stdout and done.stderr == ""


def test_a_failing_threshold_exits_1_and_names_it(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    done = bench(
        "--url", server.url, "--path", "/static", "--rate", "20", "--duration", "1s", "--json", out,
        "--threshold", "errors==0", "--threshold", "requests>100000", "--threshold", "p99<0.001ms",
    )  # fmt: skip
    assert done.returncode == 1, cli_output(done)
    failed = [line for line in done.stdout.splitlines() if line.startswith("threshold failed")]
    assert len(failed) == 2, done.stdout
    assert failed[0] == "threshold failed: requests>100000: requests is 20"
    assert failed[1].startswith("threshold failed: p99<0.001ms: p99 is ")
    assert report(out)["requests"] == 20  # the report is written all the same


def test_staleness_is_measured_on_a_page_with_revalidate_1(server: Server, tmp_path: Path) -> None:
    """/fresh (revalidate 1) left alone for 2 s: the run's first request is served a generation
    at least 2 s old (Age >= 2, staleness >= 1 s); after it, one regeneration a second."""
    started = time.time()

    def fresh_generation() -> bool:
        answer = server.page("/fresh")
        return answer.cache in ("HIT", "MISS") and answer.header("age") == "0"

    wait_for(fresh_generation, 10, what="a generation of /fresh less than a second old")
    born_after = started - 1  # Age 0: made within the second before that answer
    wait_until(time.monotonic() + 2.0)
    out = tmp_path / "fresh.json"
    done = bench("--url", server.url, "--path", "/fresh", "--rate", "20", "--duration", "2s", "--json", out)
    assert done.returncode == 0, cli_output(done)
    r = report(out)
    staleness = r["staleness_s"]
    assert r["errors"] == 0 and r["states"]["STALE"] >= 1, r["states"]
    assert staleness["max"] >= 1.0, staleness
    assert staleness["max"] <= time.time() - born_after - 1, staleness  # no staler than the page can be
    assert 0 < staleness["stale_share"] <= 0.5, staleness
    assert r["regenerations"] >= 1
    assert f"max {staleness['max']:g} s" in done.stdout


# --- a server bench starts itself, and --paths-from routes ---------------------------------


def test_bench_starts_a_server_on_the_prerendered_site_and_stops_it(tmp_path: Path) -> None:
    """`isr build` first, then `isr bench SITE --cache` (no --url): bench serves the built cache
    itself; --paths-from routes requests every prerendered path (HIT, or STALE for /fresh),
    and the --new-paths are rendered on their first request (MISS). Afterwards its port is
    closed and no process it started is left."""
    site = Site.copy("bench", tmp_path)
    built = site.cli("build", str(site.root), "--cache", str(site.cache))
    assert built.returncode == 0, cli_output(built)
    marker = uuid.uuid4().hex
    out = tmp_path / "routes.json"
    done = bench(
        site.root, "--cache", site.cache, "--paths-from", "routes", "--new-paths", "2", "--zipf", "0",
        "--rate", "30", "--duration", "2s", "--json", out, env={"BENCH_E2E_MARKER": marker},
    )  # fmt: skip
    assert done.returncode == 0, cli_output(done)
    r = report(out)
    assert r["errors"] == 0, r["errors_by"]
    paths = {p["path"]: p for p in r["top_paths"]}
    new = {"/items/bench-new-0", "/items/bench-new-1"}
    assert set(paths) == {"/fresh", "/static", "/items/a", "/items/b", *new}
    for path in ("/fresh", "/static", "/items/a", "/items/b"):
        assert paths[path]["MISS"] == 0, paths[path]  # prerendered by isr build
    for path in ("/static", "/items/a", "/items/b"):
        assert paths[path]["HIT"] == paths[path]["requests"], paths[path]
    for path in new:
        assert paths[path]["MISS"] >= 1, paths[path]
    assert r["states"]["MISS"] == sum(paths[path]["MISS"] for path in new)
    # stopped afterwards: the port is closed and nothing with bench's environment is running
    port = int(r["workload"]["url"].rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert processes_with(marker) == []


def processes_with(marker: str) -> list[str]:
    """Command lines of the processes whose environment holds `marker`."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append((environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return found


# --- compare ---------------------------------------------------------------------------------


def test_compare_prints_saved_reports_side_by_side_with_ratios(tmp_path: Path) -> None:
    site = REPO / "tests" / "sites" / "bench"
    files = [tmp_path / "r1.json", tmp_path / "r30.json"]
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "isr",
                "bench",
                str(site),
                "--simulate",
                "--path",
                "/fresh",
                "--path",
                "/items/a",
                "--rate",
                "100",
                "--duration",
                "20s",
                "--revalidate",
                revalidate,
                "--json",
                str(path),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for revalidate, path in (("1", files[0]), ("30", files[1]))
    ]
    for run in runs:
        _, errors = run.communicate(timeout=60)
        assert run.returncode == 0, errors
    first, second = (report(path) for path in files)
    done = bench("--compare", *files)
    assert done.returncode == 0, cli_output(done)
    assert "r1.json" in done.stdout and "r30.json (x first)" in done.stdout

    def row(name: str) -> list[str]:
        for line in done.stdout.splitlines():
            cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
            if cells and cells[0] == name:
                return cells[1:]
        raise AssertionError(f"no row {name} in\n{done.stdout}")

    assert row("requests") == ["2,000", "2,000 (1.00)"]
    hit1, hit30 = (r["states"]["HIT"] / sum(r["states"].values()) for r in (first, second))
    assert hit30 > hit1
    assert row("hit_ratio") == [f"{hit1:,.4g}", f"{hit30:,.4g} ({hit30 / hit1:.2f})"]
    assert row("regenerations") == [
        f"{first['regenerations']:,}",
        f"{second['regenerations']:,} ({second['regenerations'] / first['regenerations']:.2f})",
    ]


# --- bad input -------------------------------------------------------------------------------

SITE = str(REPO / "tests" / "sites" / "bench")
BAD = {
    "missing trace": ([SITE, "--trace", "/nonexistent/access.log"], "cannot read trace /nonexistent/access.log: No such file or directory"),
    "bad rate": ([SITE, "--rate", "fast"], "argument --rate: 'fast' is not a number"),
    "bad threshold": ([SITE, "--threshold", "hit_ratio>5ms"], "a ratio is a fraction (0.95) or a percentage (95%)"),
    "bad duration": ([SITE, "--duration", "10x"], "'10x' is not a duration"),
    "no answer": (["--url", "URL-NOBODY", "--duration", "1s"], "does not answer"),
    "json unwritable": (["--url", "URL-LIVE", "--duration", "30s", "--json", "/nonexistent-dir/x.json"], "cannot write /nonexistent-dir/x.json: no folder /nonexistent-dir"),
    "html unwritable": (["--url", "URL-LIVE", "--duration", "30s", "--html", "/nonexistent-dir/x.html"], "cannot write /nonexistent-dir/x.html: no folder /nonexistent-dir"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case: str, server: Server) -> None:
    args, message = BAD[case]
    nobody = f"http://127.0.0.1:{free_port()}"
    args = [server.url if a == "URL-LIVE" else nobody if a == "URL-NOBODY" else a for a in args]
    before = requests_by_state(server)
    started = time.monotonic()
    done = bench(*args)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, cli_output(done)
    assert TRACEBACK not in done.stderr
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr, cli_output(done)
    assert done.stdout == ""
    # found before any load: an unwritable report file does not cost the 30 s run first
    assert elapsed < 15 and requests_by_state(server) == before
