"""`isr serve --workers N`: N server processes on one port and one cache behave as one."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Server, Site, concurrently, wait_for

TOKEN = "workers-e2e-token"


@pytest.fixture
def workers(site: Site, request: pytest.FixtureRequest) -> Iterator[Server]:
    with open(site.root / ".env", "a", encoding="utf-8") as env:
        env.write(f"ISR_REVALIDATE_TOKEN={TOKEN}\n")
    with Server(site, extra_args=("--workers", "2")).running() as server, server.watched(request):
        yield server


def children(pid: int) -> set[int]:
    """Every live descendant of a process, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_two_server_processes_share_the_port(workers: Server) -> None:
    assert workers.proc is not None
    servers = [p for p in children(workers.proc.pid) if b"--supervised" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(servers) == 2
    instances = {workers.get("/about").header("x-isr-generation") for _ in range(10)}
    assert len(instances) == 1  # one record, whichever process answers


def test_one_regeneration_across_processes(workers: Server, site: Site) -> None:
    site.control("shared", value="v1", revalidate=2)
    first = workers.page("/ctl/shared")
    for _ in range(6):  # both processes now hold it in memory
        workers.page("/ctl/shared")
    site.control("shared", value="v2", revalidate=60, sleep=1.5)  # one slow regeneration, then fresh
    wait_for(lambda: workers.get("/ctl/shared").cache == "STALE", 5, what="the page to go stale")
    answers = concurrently([lambda: workers.get("/ctl/shared") for _ in range(40)])
    assert all(a.status == 200 for a in answers)
    wait_for(lambda: workers.get("/ctl/shared").generation != first.generation, 10, what="the regeneration")
    assert site.count("ctl:shared") == 2  # the first render and exactly one regeneration


def test_a_new_generation_reaches_every_process_within_a_second(workers: Server, site: Site) -> None:
    site.control("fanout", value="old", revalidate=60)
    old = workers.page("/ctl/fanout").generation
    for _ in range(10):
        assert workers.page("/ctl/fanout").generation == old
    site.control("fanout", value="new", revalidate=60)
    answer = workers.request("POST", "/_isr/revalidate", body=b'{"paths": ["/ctl/fanout"]}', headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status == 200, answer.describe()
    stored = time.monotonic()

    def everywhere() -> bool:
        return all(workers.page("/ctl/fanout").generation != old for _ in range(10))

    wait_for(everywhere, 1.5, interval=0.05, what="every process to serve the new generation")
    assert time.monotonic() - stored < 1.5


def test_kill_9_of_the_supervisor_takes_its_servers_along(workers: Server) -> None:
    assert workers.proc is not None
    family = children(workers.proc.pid)
    assert family
    os.kill(workers.proc.pid, signal.SIGKILL)
    workers.proc.wait(10)
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in family), 10, what="the servers and their workers to exit")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def servers_of(supervisor: Server) -> set[int]:
    assert supervisor.proc is not None
    return {p for p in children(supervisor.proc.pid) if _is_server(p)}


def _is_server(pid: int) -> bool:
    try:
        return b"--supervised" in Path(f"/proc/{pid}/cmdline").read_bytes() and not _zombie(pid)
    except OSError:
        return False


def test_a_killed_server_is_started_again_while_the_others_serve(workers: Server) -> None:
    before = servers_of(workers)
    assert len(before) == 2
    # Both listen before one is killed: one killed before it said so would never say it (CI saw it once).
    wait_for(lambda: workers.output().count("isr: serving") == 2, 15, what="both servers to listen")
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # Gone or a zombie: an exiting process loses its cmdline before its sockets, and a
    # connection the kernel hands the dying listener meanwhile is reset.
    wait_for(lambda: not Path(f"/proc/{victim}").exists() or _zombie(victim), 10, what="the killed server to be gone")
    wait_for(lambda: "killed by SIGKILL" in workers.output(), 10, what="the supervisor to reap it")
    for _ in range(20):  # the other one answers everything meanwhile
        assert workers.page("/about").status == 200
    restarted = wait_for(lambda: (servers_of(workers) - before) or None, 15, what="a new server process")
    assert len(servers_of(workers)) == 2 and victim not in servers_of(workers)
    wait_for(lambda: "started again" in workers.output(), 10, what="the restart to be logged")
    assert "killed by SIGKILL" in workers.output()
    assert len(restarted) == 1
    wait_for(lambda: workers.output().count("isr: serving") == 3, 15, what="the new server to listen")
    for _ in range(20):
        assert workers.page("/about").status == 200


def test_hup_switches_every_server_to_the_new_build(workers: Server, site: Site) -> None:
    assert "ABOUT-PAGE" in workers.page("/about").text
    about = site.pages / "about.html"
    about.write_text(about.read_text().replace("ABOUT-PAGE", "ABOUT-PAGE-HUP-ALL"))
    for name in ("moved.py", "moved.html", "moved_perm.py", "moved_perm.html"):  # a redirect fails a build
        (site.pages / name).unlink()
    proc = site.cli("build", str(site.root), "--cache", str(site.cache))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert workers.proc is not None
    os.kill(workers.proc.pid, signal.SIGHUP)

    def everywhere() -> bool:
        return all("ABOUT-PAGE-HUP-ALL" in workers.page("/about").text for _ in range(10))

    wait_for(everywhere, 15, what="every server to serve the new build")
    wait_for(lambda: workers.output().count("now serving build") == 2, 10, what="both servers to log the switch")


def test_sigterm_stops_every_server(workers: Server) -> None:
    assert workers.proc is not None
    family = children(workers.proc.pid)
    workers.proc.send_signal(signal.SIGTERM)
    assert workers.proc.wait(15) == 0
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in family), 10, what="every process to exit")


def test_a_taken_port_stops_the_supervisor(site: Site) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = site.cli("serve", str(site.root), "--port", str(port), "--workers", "2", "--cache", str(site.cache), timeout=30)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_dashboard_shows_every_server_process_as_one_site(workers: Server) -> None:
    """Either process's /_isr/stats has a row per process, so --workers adds up as one site."""
    def rows() -> list[dict[str, object]] | None:
        servers = workers.get("/_isr/stats").json()["servers"]
        return servers if len(servers) == 2 else None

    servers = wait_for(rows, 15, interval=0.5, what="a row per server process")
    assert {int(str(row["server"]).rpartition(":")[2]) for row in servers} == servers_of(workers)
