"""Immutable builds: a running server never sees edits of the site; a build beside it leaves
its HITs alone; `kill -HUP` switches it to the newest complete build without a failed request."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import REPO, Response, Server, Site, cli_output, concurrently, embedded_data, wait_for

PRERENDERED = ("/", "/about", "/static", "/blog/hello", "/blog/world", "/docs/intro")


@pytest.fixture
def site(site: Site) -> Site:
    """The basic site without its redirect pages, which fail a build (see test_e2e_build.py)."""
    for name in ("moved.py", "moved.html", "moved_perm.py", "moved_perm.html"):
        (site.pages / name).unlink()
    return site


def build(site: Site) -> str:
    proc = site.cli("build", str(site.root), "--cache", str(site.cache))
    assert proc.returncode == 0, cli_output(proc)
    return proc.stdout + proc.stderr


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text, f"{old!r} not in {file}"
    file.write_text(text.replace(old, new))


class Loop:
    """A thread firing requests at the server continuously, keeping every answer."""

    def __init__(self, server: Server, paths: tuple[str, ...]) -> None:
        self.server, self.paths = server, paths
        self.answers: list[tuple[str, Response]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Loop:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in self.paths:
                try:
                    self.answers.append((path, self.server.get(path, timeout=15)))
                except OSError as exc:  # a refused, reset or timed-out request is a failed one
                    self.failures.append(f"{path}: {exc!r}")

    def wait_for_more(self, count: int) -> None:
        goal = len(self.answers) + count
        wait_for(lambda: len(self.answers) >= goal or self.failures, 20, what=f"{count} more answers")

    def check(self) -> None:
        assert not self.failures, f"failed requests: {self.failures[:5]}"
        bad = [f"{path}: {a.status} {a.cache}" for path, a in self.answers if a.status != 200]
        assert not bad, f"{len(bad)} of {len(self.answers)} requests did not answer 200: {bad[:5]}"


def test_edits_under_pages_change_nothing_while_serving(site: Site, serve: Callable[..., Server]) -> None:
    server = serve()
    build_id = server.build_id("/about")
    assert "ABOUT-PAGE" in server.page("/about").text
    edit(site.pages / "about.html", "ABOUT-PAGE", "ABOUT-EDITED")
    edit(site.pages / "about.py", '"about-1"', '"about-edited"')
    (site.pages / "_lib" / "control.py").write_text("def broken(:\n")  # every page imports it
    (site.pages / "added.py").write_text("def get_static_props(ctx):\n    return {'props': {}}\n")
    (site.pages / "added.html").write_text("<p>ADDED</p>\n")
    (site.pages / "static.py").unlink()
    (site.root / "isr.json").write_text("{not json")

    # Paths never rendered before, four at once: new workers start, on the served build's code.
    for name in ("e1", "e2", "e3", "e4"):
        site.control(name, value=f"value-{name}", sleep=0.5)
    answers = concurrently([lambda name=name: server.get(f"/ctl/{name}") for name in ("e1", "e2", "e3", "e4")])
    for name, answer in zip(("e1", "e2", "e3", "e4"), answers, strict=True):
        assert answer.status == 200, answer.describe() + server.output()
        assert f"VALUE=[value-{name}]" in answer.text
        assert embedded_data(answer.text)["build_id"] == build_id
    about = server.page("/about")
    assert "ABOUT-PAGE" in about.text and "ABOUT-EDITED" not in about.text
    assert server.page("/static").status == 200
    assert server.get("/added").status == 404
    assert server.page("/blog/new-post").cache == "MISS"
    assert server.build_id("/blog/new-post") == build_id


def test_a_build_beside_a_running_server_leaves_its_hits_hits(site: Site, serve: Callable[..., Server]) -> None:
    build(site)
    server = serve()
    served = server.build_id("/about")
    for path in PRERENDERED:
        assert server.page(path).cache == "HIT", path
    with Loop(server, PRERENDERED) as loop:
        for version in ("V2", "V3"):  # two newer builds: the served one is kept because it is in use
            edit(site.pages / "about.html", "ABOUT-PAGE", f"ABOUT-PAGE-{version}")
            build(site)
            loop.wait_for_more(len(PRERENDERED) * 3)
        time.sleep(1.5)  # three change-log rounds of the server after the last build
        loop.wait_for_more(len(PRERENDERED) * 3)
    loop.check()
    states = {a.cache for _, a in loop.answers}
    assert states == {"HIT"}, f"answers beside the builds were {states}"
    assert {embedded_data(a.text)["build_id"] for _, a in loop.answers} == {served}
    assert "ABOUT-PAGE-V" not in server.page("/about").text


def test_hup_under_a_request_loop_switches_builds_without_a_failed_request(site: Site, serve: Callable[..., Server]) -> None:
    build(site)
    server = serve()
    old = server.build_id("/about")
    edit(site.pages / "about.html", "ABOUT-PAGE", "ABOUT-PAGE-NEW-BUILD")
    build(site)
    site.control("inflight", value="slow", sleep=2)
    (site.root / "public" / "added-file.txt").write_text("PUBLIC-ADDED")
    assert server.get("/added-file.txt").status == 404  # public/ is indexed when a build is deployed
    assert server.proc is not None
    with Loop(server, ("/about", "/", "/blog/hello", "/ssr", "/blog/fresh-path")) as loop:
        loop.wait_for_more(20)
        slow_answer: list[Response | OSError] = []

        def slow_request() -> None:
            try:
                slow_answer.append(server.get("/ctl/inflight"))
            except OSError as exc:
                slow_answer.append(exc)

        slow = threading.Thread(target=slow_request)
        slow.start()
        time.sleep(0.5)  # the slow request is in flight on the old build
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for(lambda: "ABOUT-PAGE-NEW-BUILD" in server.page("/about").text, 15, what="the new build to be served")
        loop.wait_for_more(50)
        slow.join(15)
    loop.check()
    assert slow_answer and isinstance(slow_answer[0], Response), f"{slow_answer}\n{server.output()}"
    assert slow_answer[0].status == 200, slow_answer[0].describe()
    assert embedded_data(slow_answer[0].text)["build_id"] == old  # it finished on the old build
    new = server.build_id("/about")
    assert new != old
    assert server.page("/about").cache == "HIT"  # prerendered by the build
    assert server.page("/added-file.txt").text == "PUBLIC-ADDED"
    assert f"now serving build {new}" in server.output()

    os.kill(server.proc.pid, signal.SIGHUP)  # nothing newer: it says so and carries on
    wait_for(lambda: "no newer complete build" in server.output(), 10, what="the no-op HUP to be logged")
    assert server.build_id("/about") == new


def test_the_example_site_runs_from_its_snapshot_with_live_data(tmp_path: Path) -> None:
    """pages/_lib/content.py finds data/site.sql in the working directory, not beside itself."""
    example = Site.copy("basic", tmp_path)
    shutil.rmtree(example.root)
    for folder in ("pages", "data"):
        shutil.copytree(REPO / folder, example.root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    server = Server(example).start()
    try:
        post = server.page("/blog/hello-isr")
        assert "Hello, ISR" in post.text
        snapshots = [p.name for p in (example.root / ".isr" / "builds").iterdir()]
        assert snapshots == [embedded_data(post.text)["build_id"]]
        edit(example.root / "data" / "site.sql", "'How stale-while-revalidate works'", "'LIVE-DATA-TITLE'")
        assert "LIVE-DATA-TITLE" in server.page("/blog/stale-while-revalidate").text  # rendered now, from live data
    finally:
        server.stop()
