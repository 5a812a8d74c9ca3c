"""Cache bounds under a crawler: any number of junk paths keeps memory and disk within
`--cache-memory` and `--cache-disk`, and an evicted page is generated again on its next
request (issue 8, items 1 and 6)."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections import Counter
from pathlib import Path

import brotli

from e2e_support import Response, Server, Site, data_path, embedded_data

JUNK_PATHS = 5_000
CONNECTIONS = 8
MEMORY = 8 * 2**20  # --cache-memory 8mb
DISK = 4 * 2**20  # --cache-disk 4mb
RSS_OVERHEAD = 100 * 2**20  # what the server may take beyond its memory bound
DISK_SLACK = 1.0  # the bound holds the database and its write-ahead log


def crawl(server: Server, paths: list[str]) -> Counter[int]:
    """GET every path over a few keep-alive connections; the statuses seen."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def worker(share: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        for path in share:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            with lock:
                statuses[response.status] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(paths[i::CONNECTIONS],)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def server_rss_bytes(pid: int) -> int:
    """The server's RSS and its disk cache's read process's (the function workers are not
    the cache's)."""
    return rss_bytes(pid) + sum(map(rss_bytes, read_processes(pid)))


def read_processes(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"isr.cache.read_process" in Path(f"/proc/{c}/cmdline").read_bytes()]


def small_memory_server(tmp_path: Path) -> tuple[Site, Server]:
    """The scale site served with room in memory for a few of its pages."""
    site = Site.copy("scale", tmp_path)
    (site.root / ".env").write_text("ISR_REVALIDATE_TOKEN=t0ken\n")
    return site, Server(site, extra_args=("--cache-memory", "256kb")).start()


def generate(server: Server, paths: list[str]) -> dict[str, Response]:
    generated = {path: server.get(path) for path in paths}
    assert {r.cache for r in generated.values()} == {"MISS"}
    return generated


def disk_bytes(cache: Path) -> int:
    return sum(f.stat().st_size for f in cache.iterdir() if f.is_file())


def test_junk_paths_keep_memory_and_disk_bounded_and_evicted_pages_regenerate(tmp_path: Path) -> None:
    site = Site.copy("scale", tmp_path)
    server = Server(site, extra_args=("--cache-memory", "8mb", "--cache-disk", "4mb")).start()
    try:
        first = server.get("/junk/first/page")
        assert first.status == 200 and first.cache == "MISS" and "NAME=[first/page]" in first.text
        assert server.get("/junk/first/page").cache == "HIT"

        statuses = crawl(server, [f"/junk/crawler/{n}/x{n * 7919 % 10007}" for n in range(JUNK_PATHS)])

        assert statuses == Counter({200: JUNK_PATHS})
        assert disk_bytes(site.cache) <= DISK * DISK_SLACK, f"cache folder holds {disk_bytes(site.cache)} bytes"
        assert server.proc is not None
        assert server_rss_bytes(server.proc.pid) <= MEMORY + RSS_OVERHEAD
        stats = server.get("/_isr/stats").json()["cache"]
        assert stats["memory_bytes"] <= MEMORY
        assert stats["records"] < JUNK_PATHS  # the disk bound evicted most of them

        again = server.get("/junk/first/page")  # the least recently used: long evicted
        assert again.status == 200 and again.cache == "MISS" and "NAME=[first/page]" in again.text
        assert again.generation != first.generation
        assert server.get("/junk/first/page").cache == "HIT"
    finally:
        server.stop()


def _decoded(response: Response) -> bytes:
    coding = response.header("content-encoding")
    if coding == "br":
        return brotli.decompress(response.body)
    return gzip.decompress(response.body) if coding == "gzip" else response.body


def test_pages_memory_does_not_keep_are_served_from_disk_as_memory_serves_them(tmp_path: Path) -> None:
    site, server = small_memory_server(tmp_path)
    try:
        paths = [f"/junk/page/{n}" for n in range(200)]
        generated = generate(server, paths)
        held = server.get("/_isr/stats").json()["cache"]["memory_records"]
        assert held < len(paths) // 2  # most pages are read from disk below
        build = server.build_id(paths[-1])
        for path in paths[-held:]:  # the pages memory holds, each used once: a page read once is not kept
            assert server.get(path).cache == "HIT"
        for coding in ("identity", "br"):
            data = server.get(data_path(build, paths[0]), {"Accept-Encoding": coding})
            assert data.status == 200 and data.cache == "HIT" and data.header("content-type") == "application/json"
            assert json.loads(_decoded(data)) == embedded_data(generated[paths[0]].text)

        for coding in ("identity", "br", "gzip"):
            for path in paths:
                response = server.get(path, {"Accept-Encoding": coding})
                assert response.status == 200 and response.cache == "HIT", response.describe()
                assert _decoded(response) == generated[path].body
                assert response.header("content-encoding") == (None if coding == "identity" else coding)
                assert response.header("content-length") == str(len(response.body))
                assert response.header("x-isr-generation") == generated[path].generation
                assert response.header("vary") == "Accept-Encoding" and response.header("age") is not None
                etag = generated[path].header("etag") or ""
                assert response.header("etag") == (etag if coding == "identity" else f'{etag[:-1]}-{coding}"')
            head = server.head(paths[-1])
            assert head.status == 200 and head.body == b"" and head.header("content-length") == generated[paths[-1]].header("content-length")
        assert server.get("/_isr/stats").json()["cache"]["memory_records"] <= held + 10  # served, mostly not kept

        marked = site.cli("revalidate", "--tag", "junk", "--url", server.url, "--token", "t0ken")
        assert marked.returncode == 0, marked.stderr
        assert server.get(paths[0]).cache == "STALE"  # a tag revalidation reaches pages read from disk
    finally:
        server.stop()


def waits(pid: int) -> int:
    """How often a process went to sleep waiting (the read process: once per request it is sent, at least)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches for pid {pid}")


def test_pages_read_from_disk_once_are_served_again_without_the_read_process(tmp_path: Path) -> None:
    site, server = small_memory_server(tmp_path)
    try:
        paths = [f"/junk/page/{n}" for n in range(150)]
        generated = generate(server, paths)
        assert server.proc is not None
        (reader,) = read_processes(server.proc.pid)
        before = waits(reader)
        for _ in range(2):  # a read that crosses the news of its page's generation is not spilled: the second is
            for path in paths:  # read from disk by the read process, which spills each response
                assert server.get(path, {"Accept-Encoding": "br"}).cache == "HIT"
        first_waits = waits(reader) - before
        before = waits(reader)
        for path in paths:  # read back from the spill, on the event loop
            response = server.get(path, {"Accept-Encoding": "br"})
            assert response.status == 200 and response.cache == "HIT", response.describe()
            assert brotli.decompress(response.body) == generated[path].body
            assert response.header("content-encoding") == "br"
            assert response.header("x-isr-generation") == generated[path].generation
        # The read process waits for each request it is sent: only pages memory found room to keep
        # whole (a read of the record) still go to it.
        assert waits(reader) - before < first_waits / 10, (waits(reader) - before, first_waits)
        assert server.get(paths[0], {"Accept-Encoding": "gzip"}).cache == "HIT"  # another coding: read by the process
        again = site.cli("revalidate", paths[1], "--url", server.url, "--token", "t0ken")
        assert again.returncode == 0, again.stderr
        response = server.get(paths[1], {"Accept-Encoding": "br"})
        assert response.cache == "HIT" and response.header("x-isr-generation") != generated[paths[1]].generation
    finally:
        server.stop()


def test_a_spilled_page_answered_before_routing_keeps_the_routing_rules(tmp_path: Path) -> None:
    site = Site.copy("scale", tmp_path)
    junk = site.root / "pages" / "junk"
    (site.root / "pages" / "[...path].py").write_text((junk / "[...path].py").read_text())
    (site.root / "pages" / "[...path].html").write_text((junk / "[...path].html").read_text())
    server = Server(site, extra_args=("--cache-memory", "256kb")).start()
    try:
        assert server.get("/%5Fisr/stats").cache == "MISS"  # a page at /_isr/stats, through the catch-all
        assert server.get("/junk/page/%2530").cache == "MISS"  # and one at /junk/page/%30
        paths = [f"/junk/page/{n}" for n in range(150)]
        generated = generate(server, paths)  # memory full: the first pages left it
        for _ in range(2):  # a read that crosses the news of its page's generation is not spilled: the second is
            assert server.get("/%5Fisr/stats").cache == "HIT"  # read from disk, and spilled as /_isr/stats
            assert server.get("/junk/page/%2530").cache == "HIT"  # ...and as /junk/page/%30
            for path in paths:
                assert server.get(path).cache == "HIT"  # read from disk, and spilled
        stats = server.get("/_isr/stats")  # not the page spilled under that path
        assert stats.status == 200 and "cache" in stats.json(), stats.describe()
        page = paths[0]
        assert server.get(page).cache == "HIT"  # from the spill, before routing
        head = server.head(page)
        assert head.status == 200 and head.body == b"" and head.header("content-length") == str(len(generated[page].body))
        etag = generated[page].header("etag") or ""
        assert server.get(page, {"If-None-Match": etag}).status == 304  # conditional: the engine answers
        encoded = server.get("/junk/page/%30")  # /junk/page/0 (not the page spilled as /junk/page/%30): routed
        assert encoded.cache == "HIT" and encoded.body == generated[page].body
        assert server.request("POST", page).status == 405
    finally:
        server.stop()
