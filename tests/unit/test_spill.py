"""Spill files: responses the disk cache's read process read, appended where the event
loop reads them back without waiting for the disk, and never read once their file is
emptied for new ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from isr.cache import layout
from isr.cache.spill import SpillFiles, SpillWriter, decode, open_spill

from cache_support import page_record

KEY = ("/blog/post-1", "html", "br")


def _response(n: int = 1, size: int = 6_000) -> layout.Served:
    return layout.served(page_record(n, size).to_bytes(), "html", "br")


def _spill(files: SpillFiles, key: tuple[str, str, str], response: layout.Served) -> int:
    """Append as the read process does, to the file `target` names: the location the loop keeps."""
    target = files.target()
    writer = SpillWriter(files.fds)
    if target[2]:
        writer.empty(target[0])
    where = writer.append(target[0], key, response)
    assert where is not None
    location = files.location(target, where[1], where[2])
    assert location is not None
    return location


def _read_back(files: SpillFiles, location: int, key: tuple[str, str, str]) -> layout.Served | None:
    raw = files.read(location)
    return None if raw is None else decode(raw, key)


@pytest.fixture
def files(tmp_path: Path) -> SpillFiles:
    spill = SpillFiles(tmp_path, cap=50_000)
    yield spill
    spill.close()


def test_a_spilled_response_reads_back_as_it_was_read(files: SpillFiles, tmp_path: Path) -> None:
    response = _response()
    location = _spill(files, KEY, response)
    back = _read_back(files, location, KEY)
    assert back is not None
    assert (bytes(back.head), bytes(back.body)) == (bytes(response.head), bytes(response.body))
    assert (back.status, back.generated_at, back.revalidate, back.started_at, back.tags) == (
        response.status, response.generated_at, response.revalidate, response.started_at, response.tags,
    )
    assert list(tmp_path.iterdir()) == []  # unlinked: nothing is left in the cache folder


def test_bytes_read_under_another_key_are_no_response(files: SpillFiles) -> None:
    location = _spill(files, KEY, _response())
    assert _read_back(files, location, ("/blog/post-1", "html", "gzip")) is None
    assert _read_back(files, location, ("/blog/post-2", "html", "br")) is None
    assert decode(memoryview(b"\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00{bad}"), KEY) is None  # damaged
    assert decode(memoryview(b"\x00"), KEY) is None  # truncated
    raw = files.read(location)
    assert raw is not None
    assert decode(raw[:-1], KEY) is None  # a body cut short is no response
    assert decode(memoryview(bytes(raw) + b"x"), KEY) is None  # nor one with bytes after it


def test_a_file_emptied_for_new_responses_is_never_read_at_its_old_locations(tmp_path: Path) -> None:
    files = SpillFiles(tmp_path, cap=1)  # every response fills a file: the next goes to the other
    try:
        first = _spill(files, ("/blog/post-1", "html", "br"), _response(1))
        second = _spill(files, ("/blog/post-2", "html", "br"), _response(2))  # the second file
        assert _read_back(files, first, ("/blog/post-1", "html", "br")) is not None
        third = _spill(files, ("/blog/post-3", "html", "br"), _response(3, 12_000))  # the first file again, emptied first
        assert files.read(first) is None  # its old location: gone, though bytes lie there again
        assert _read_back(files, third, ("/blog/post-3", "html", "br")) is not None
        assert _read_back(files, second, ("/blog/post-2", "html", "br")) is not None  # the other file is untouched
    finally:
        files.close()


def test_a_response_the_page_cache_dropped_is_not_read_on_the_loop(files: SpillFiles) -> None:
    location = _spill(files, KEY, _response())
    for fd in files.fds:
        os.fsync(fd)  # clean pages, which the kernel may drop...
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # ...and drops now
    assert files.read(location) is None  # it would wait for the disk: the read process reads it instead


def test_a_location_past_the_end_of_its_file_reads_as_none(files: SpillFiles) -> None:
    location = _spill(files, KEY, _response())
    os.ftruncate(files.fds[0], 100)  # cut short (a full disk): never a partial response
    assert files.read(location) is None


def test_a_response_written_for_a_file_emptied_since_gets_no_location(tmp_path: Path) -> None:
    files = SpillFiles(tmp_path, cap=1)  # every response fills a file
    try:
        late = files.target()  # a request to file 0 whose answer comes late
        assert files.location(files.target(), 0, 10) is not None  # another's answer fills file 0
        second = files.target()
        assert (second[0], second[2]) == (1, True)  # so the next request goes to file 1, emptied
        assert files.location(second, 0, 10) is not None  # and fills it
        third = files.target()
        assert (third[0], third[2]) == (0, True)  # file 0 is emptied for the one after
        assert files.location(late, 20, 10) is None  # the late answer's bytes are gone with it
    finally:
        files.close()


def test_spill_files_are_not_used_where_reads_would_wait_for_the_disk() -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm here")
    files = open_spill(shm, cap=10**6)  # tmpfs: preadv refuses RWF_NOWAIT
    assert files is None, "tmpfs took RWF_NOWAIT: the probe has nothing to refuse here"
