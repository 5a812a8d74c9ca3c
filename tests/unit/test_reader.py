"""The disk cache's read process: records read in batches outside the server's GIL,
and a process that ends is replaced on the next read."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isr.cache import read_process
from isr.cache.disk import DATABASE
from isr.cache.spill import decode
from isr.errors import CacheError

from cache_support import opened, page_record, stored


def _read_process(disk: object) -> int:
    process = disk._reader._process  # type: ignore[attr-defined]
    assert process is not None and process.poll() is None
    return int(process.pid)


async def test_concurrent_reads_of_many_records_each_get_their_own_bytes(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored(f"/p{n}", raw=os.urandom(10) * (n + 1)) for n in range(300)])
        expected = {f"/p{n}": None for n in range(300)}
        for n in range(300):
            expected[f"/p{n}"] = await disk.get("b1", f"/p{n}")  # one at a time
        together = await asyncio.gather(*(disk.get("b1", f"/p{n}") for n in range(300)), disk.get("b1", "/none"))
        assert together[:300] == list(expected.values()) and together[300] is None
        assert len({len(raw or b"") for raw in together[:300]}) == 300


async def test_a_killed_read_process_fails_its_reads_and_the_next_read_starts_another(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/a", raw=b"one")])
        assert await disk.get("b1", "/a") == b"one"
        first = _read_process(disk)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(CacheError, match="read process stopped"):
            for _ in range(200):  # until the loop sees its socket close
                await disk.get("b1", "/a")
                await asyncio.sleep(0.01)
        assert await disk.get("b1", "/a") == b"one"
        assert _read_process(disk) != first


async def test_closing_the_cache_ends_its_read_process(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/a", raw=b"one")])
        assert await disk.get("b1", "/a") == b"one"
        process = disk._reader._process  # type: ignore[attr-defined]
    assert process is not None and process.poll() is not None
    with pytest.raises(CacheError, match="closed"):
        await disk.get("b1", "/a")


_SERVER = """
import asyncio, sys
from isr.cache.disk import DiskBackend

async def main():
    disk = DiskBackend(sys.argv[1], 2**30)
    await disk.get("b1", "/a")
    print(disk._reader._process.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_the_read_process_ends_with_a_server_killed_with_sigkill(tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        reader = int(server.stdout.readline())
        assert Path(f"/proc/{reader}").exists()
    finally:
        server.kill()
        server.wait()
        assert server.stdout is not None
        server.stdout.close()
    deadline = time.monotonic() + 10
    while _alive(reader) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(reader), "the read process outlived its server"


def _alive(pid: int) -> bool:
    """Running and not a zombie (an orphan is reaped by init, or by us as the subreaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_one_batch_reads_a_whole_record_and_responses_of_the_same_path(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        page = page_record(1, 4_000)
        raw = page.to_bytes()
        await disk.put("b1", [stored("/blog/post-1", raw=raw)])
        whole, data, html, missing = await asyncio.gather(
            disk.get("b1", "/blog/post-1"),
            disk.get_served("b1", "/blog/post-1", "data", "gzip"),
            disk.get_served("b1", "/blog/post-1", "html", "identity"),
            disk.get_served("b1", "/none", "html", "br"),
        )
        assert whole == raw and missing is None
        assert data is not None and (bytes(data.head), bytes(data.body)) == (page.data.head("gzip"), page.data.bodies["gzip"])
        assert html is not None and (bytes(html.head), bytes(html.body)) == (page.html.head("identity"), page.html.bodies["identity"])
        assert (html.status, html.generated_at, html.tags) == (200, page.generated_at, list(page.tags))


async def test_the_read_process_imports_this_isr_whatever_the_working_folder_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "isr.py").write_text("raise SystemExit('not isr')\n")  # a site's own module of that name
    monkeypatch.chdir(tmp_path)
    async with opened(tmp_path / "cache") as disk:
        await disk.put("b1", [stored("/a", raw=b"one")])
        assert await disk.get("b1", "/a") == b"one"


async def test_a_damaged_record_is_found_as_nothing_and_the_read_process_goes_on(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored("/bad", raw=b"isr3\x00\x00\x00\x05{bad}"), stored("/a", raw=b"one")])
        assert await disk.get("b1", "/a") == b"one"
        process = _read_process(disk)
        assert await disk.get_served("b1", "/bad", "html", "br") is None
        assert await disk.get("b1", "/a") == b"one" and _read_process(disk) == process


async def test_a_response_asked_many_times_at_once_is_read_and_sent_once(tmp_path: Path) -> None:
    page = page_record(1, 4_000)
    async with opened(tmp_path) as disk:
        await disk.put("b1", [stored(page.path, raw=page.to_bytes())])
        db = read_process.connect_reader(str(tmp_path / DATABASE))
        index, blobs = read_process.read_records(db, [["b1", page.path, ["html", "br"]]] * 64 + [["b1", page.path, None]], 300.0)
        db.close()
    assert [entry[2] for entry in index] == [("html", "br"), None]
    assert blobs == [page.html.head("br"), page.html.bodies["br"], page.to_bytes()]


async def test_a_restarted_read_process_spills_after_what_its_predecessor_spilled(tmp_path: Path) -> None:
    async with opened(tmp_path) as disk:
        pages = [page_record(n, 6_000) for n in (1, 2)]
        await disk.put("b1", [stored(page.path, raw=page.to_bytes()) for page in pages])
        first = await disk.get_served("b1", pages[0].path, "html", "gzip")
        assert first is not None and first.spilled is not None and disk.spill is not None
        os.kill(_read_process(disk), signal.SIGKILL)
        with pytest.raises(CacheError, match="read process stopped"):
            for _ in range(200):  # until the loop sees its socket close
                await disk.get("b1", pages[0].path)
                await asyncio.sleep(0.01)
        second = await disk.get_served("b1", pages[1].path, "html", "gzip")  # read by a new process
        assert second is not None and second.spilled is not None
        for page, response in zip(pages, (first, second), strict=True):
            raw = disk.spill.read(response.spilled)  # type: ignore[arg-type]
            back = None if raw is None else decode(raw, (page.path, "html", "gzip"))
            assert back is not None and bytes(back.body) == page.html.bodies["gzip"]
