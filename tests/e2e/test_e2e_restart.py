"""The cache survives restarts, and `kill -9` never leaves a record whose HTML and JSON
disagree (issue item 8)."""

from __future__ import annotations

import random
import signal
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from e2e_support import (
    STOP_DEADLINE_S,
    TRACEBACK,
    Server,
    Site,
    data_path,
    embedded_data,
    rendered_value,
    wait_until,
)

PATHS = ["/", "/about", "/blog/hello", "/blog/on-demand", "/docs/a/b", "/ctl/keep", "/override", "/big"]


def test_restart_keeps_every_cached_page(server: Server, site: Site) -> None:
    site.control("keep", value="kept", revalidate=60)
    before = {path: server.page(path) for path in PATHS}
    gone = server.get("/gone")
    moved = server.get("/moved")
    assert gone.status == 404 and moved.status == 307
    build_id = embedded_data(before["/about"].text)["build_id"]
    renders = site.render_tags()

    server.restart()

    for path, old in before.items():
        resp = server.page(path)
        assert resp.cache == "HIT", f"{path} after restart: {resp.describe()}"
        assert resp.generation == old.generation, path
        assert resp.body == old.body, path
        assert resp.header("etag") == old.header("etag"), path
        data = server.page(data_path(build_id, path))
        assert data.generation == old.generation
        assert data.json() == embedded_data(old.text), path
    again_gone = server.get("/gone")
    assert again_gone.status == 404 and again_gone.cache == "HIT"
    assert again_gone.generation == gone.generation
    again_moved = server.get("/moved")
    assert again_moved.status == 307 and again_moved.cache == "HIT"
    assert again_moved.generation == moved.generation
    assert site.render_tags() == renders, "a restart rendered cached pages again"


def test_revalidate_from_get_static_props_survives_restart(server: Server, site: Site) -> None:
    first = server.page("/override")
    assert first.header("cache-control", "").startswith("s-maxage=30,")
    server.restart()
    resp = server.page("/override")
    assert resp.cache == "HIT", resp.describe()
    assert resp.header("cache-control") == first.header("cache-control")
    assert site.count("override") == 1


def test_stale_page_after_restart_is_still_stale(server: Server, site: Site) -> None:
    """Freshness is measured from when the generation was produced, not from the restart."""
    site.control("staleafter", value="v1", revalidate=1)
    first = server.page("/ctl/staleafter")
    produced = time.monotonic()
    site.control("staleafter", value="v2", revalidate=60, sleep=1)
    server.restart()
    wait_until(produced + 1.3)
    resp = server.page("/ctl/staleafter")
    assert resp.cache == "STALE", resp.describe()
    assert resp.generation == first.generation
    assert rendered_value(resp.text) == "v1"
    assert int(resp.header("age") or "0") >= 1, resp.describe()


def test_kill_9_never_loses_or_mixes_a_record(server: Server, site: Site) -> None:
    """Regenerate large pages continuously, kill -9 the server at random moments, and check
    after each restart that every record's HTML and JSON are one generation."""
    names = [f"k{i}" for i in range(12)]
    paths = [f"/ctl/{n}" for n in names]
    for name in names:
        site.control(name, revalidate=1, pad=150_000)
    build_id = embedded_data(server.page(paths[0]).text)["build_id"]
    for path in paths:
        server.page(path)  # every path has a first generation on disk

    rng = random.Random(1234)
    for round_no in range(5):
        stop = threading.Event()

        def hammer(offset: int) -> None:
            i = offset
            while not stop.is_set():
                path = paths[i % len(paths)]
                url = path if i % 2 else data_path(build_id, path)
                try:
                    server.get(url, timeout=5)
                except Exception:  # the server is killed under our feet
                    pass
                i += 1

        threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(6)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.8, 1.8))
        renders_before_kill = len(site.render_tags())
        server.kill9()
        stop.set()
        for t in threads:
            t.join(10)
        assert renders_before_kill > len(paths) + round_no, "nothing was regenerating when killed"

        # After the restart, regenerations hold so both variants come from what is on disk.
        for name in names:
            site.control(name, revalidate=1, pad=150_000, hold=True)
        server.start()
        for path in paths:
            try:
                html = server.get(path, timeout=5)
                data = server.get(data_path(build_id, path), timeout=5)
            except TimeoutError:
                pytest.fail(
                    f"round {round_no}: after kill -9 the record of {path} is gone: the request "
                    "blocked on a new render instead of being served from the cache"
                )
            assert html.status == 200, f"round {round_no} {path}: {html.describe()}"
            assert data.status == 200, f"round {round_no} {path}: {data.describe()}"
            assert html.cache in ("HIT", "STALE"), f"record of {path} lost: {html.describe()}"
            assert html.generation == data.generation, (
                f"round {round_no} {path}: HTML generation {html.generation} "
                f"!= JSON generation {data.generation}"
            )
            embedded = embedded_data(html.text)
            assert embedded == data.json(), f"round {round_no} {path}: HTML and JSON data differ"
            assert rendered_value(html.text) == embedded["props"]["value"]
            assert html.text.count(embedded["props"]["value"]) > 1000, "truncated page"
        for name in names:
            site.control(name, revalidate=1, pad=150_000)


@dataclass
class DefaultsServer(Server):
    """`isr serve --host 127.0.0.1 --port P`, run in the site folder: SITE and cache defaulted."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "isr", "serve", "--host", "127.0.0.1", "--port", str(self.port)]


def test_serve_defaults_to_the_current_folder_and_its_cache(site: Site) -> None:
    server = DefaultsServer(site, cwd=site.root)
    try:
        server.start()
        first = server.page("/about")
        assert "ABOUT-PAGE" in first.text
        stored = [p for p in (site.root / "cache").rglob("*") if p.is_file()]
        assert stored, "the default cache is cache/ in the site folder"
        server.restart()
        again = server.page("/about")
        assert again.cache == "HIT" and again.generation == first.generation
    finally:
        server.stop()


def test_sigterm_and_ctrl_c_stop_the_server_cleanly(server: Server) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        server.page("/about")
        assert server.proc is not None
        server.proc.send_signal(sig)
        try:
            code = server.proc.wait(STOP_DEADLINE_S)
        except Exception:
            raise AssertionError(f"{sig.name} did not stop the server within {STOP_DEADLINE_S}s")
        output = server.output()
        assert TRACEBACK not in output, f"{sig.name}: traceback on shutdown\n{output}"
        assert code in (0, -sig, 128 + sig), (
            f"{sig.name}: exit code {code}\n{output}"
        )
        server.start()
