"""Build snapshots (isr.site.builds): what is copied, atomically, which build is served, pruning."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from isr.errors import SiteError
from isr.site import builds
from isr.site.builds import (
    all_builds,
    mark_complete,
    newest_complete,
    prune,
    read_build,
    served_build,
    snapshot,
    to_keep,
)
from isr.site.site import build_id, load_site


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "pages" / "_lib").mkdir(parents=True)
    (root / "pages" / "index.py").write_text("revalidate = 60\n")
    (root / "pages" / "index.html").write_text("<p>{{ value }}</p>\n")
    (root / "pages" / "_lib" / "__init__.py").write_text("")
    (root / "pages" / "_lib" / "shared.py").write_text("VALUE = 1\n")
    (root / "pages" / "__pycache__").mkdir()
    (root / "pages" / "__pycache__" / "index.cpython-311.pyc").write_bytes(b"\0")
    (root / "isr.json").write_text('{"defaults": {"revalidate": 5}}')
    (root / "helpers.py").write_text("X = 1\n")
    (root / "sitelib").mkdir()
    (root / "sitelib" / "__init__.py").write_text("Y = 2\n")
    for folder, name in (("data", "site.sql"), ("public", "logo.txt"), ("cache", "x"), ("tests", "test_x.py")):
        (root / folder).mkdir()
        (root / folder / name).write_text("not code\n")
    (root / ".env").write_text("SECRET=1\n")
    return root


def files(folder: Path) -> set[str]:
    return {f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()}


def complete(root: Path, edit: str) -> builds.Build:
    """A new complete build of the site after an edit of its page module."""
    (root / "pages" / "index.py").write_text(f"revalidate = 60\n# {edit}\n")
    return mark_complete(snapshot(root))


def test_a_snapshot_holds_the_code_and_nothing_else(site: Path) -> None:
    build = snapshot(site)
    assert build.code == site / ".isr" / "builds" / build.build_id
    assert files(build.code) == {
        "pages/index.py", "pages/index.html", "pages/_lib/__init__.py", "pages/_lib/shared.py",
        "isr.json", "helpers.py", "sitelib/__init__.py",
    }  # fmt: skip
    assert build.build_id == build_id(site)
    assert build.completed_at is None


def test_the_site_runs_its_code_from_the_snapshot_and_its_data_from_the_live_folder(site: Path) -> None:
    build = snapshot(site)
    loaded = load_site(site, build.code)
    assert loaded.root == site.resolve() and loaded.code == build.code
    assert loaded.build_id == build.build_id
    assert loaded.pages == build.code / "pages"
    assert loaded.public == site.resolve() / "public"
    assert loaded.config.revalidate == 5


def test_editing_the_site_leaves_its_snapshot_alone(site: Path) -> None:
    build = snapshot(site)
    (site / "pages" / "index.html").write_text("<p>edited</p>\n")
    (site / "pages" / "new.py").write_text("")
    (site / "isr.json").unlink()
    assert (build.code / "pages" / "index.html").read_text() == "<p>{{ value }}</p>\n"
    assert not (build.code / "pages" / "new.py").exists()
    assert load_site(site, build.code).build_id == build.build_id
    assert snapshot(site).build_id != build.build_id


def test_an_unchanged_site_snapshots_to_the_same_build(site: Path) -> None:
    first = mark_complete(snapshot(site))
    again = snapshot(site)
    assert again.code == first.code and again.completed_at == first.completed_at
    assert [b.build_id for b in all_builds(site)] == [first.build_id]
    assert not [f for f in builds.builds_folder(site).iterdir() if f.name.startswith(".")]


def test_a_failed_copy_leaves_no_snapshot(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = shutil.copyfile
    copies: list[Path] = []

    def failing_copy(source: Path, target: Path) -> None:
        if copies:
            raise OSError(28, "No space left on device")
        copies.append(copy(source, target))

    monkeypatch.setattr(builds.shutil, "copyfile", failing_copy)
    with pytest.raises(SiteError, match="No space left on device"):
        snapshot(site)
    assert list(builds.builds_folder(site).iterdir()) == []
    assert newest_complete(site) is None


def test_a_half_written_snapshot_is_never_a_build(site: Path) -> None:
    folder = builds.builds_folder(site)
    (folder / ".tmp-999999999-abcd" / "pages").mkdir(parents=True)
    assert all_builds(site) == []
    build = served_build(site)
    assert build.build_id == build_id(site) and build.completed_at is None
    assert prune(site, set()) == [".tmp-999999999-abcd"]  # its process is gone
    assert [b.build_id for b in all_builds(site)] == [build.build_id]


def test_serve_runs_the_newest_complete_build(site: Path) -> None:
    assert newest_complete(site) is None
    first = complete(site, "one")
    second = complete(site, "two")
    (site / "pages" / "index.py").write_text("# three\n")
    assert snapshot(site).completed_at is None  # `isr serve` with the live code: not complete
    assert newest_complete(site) == read_build(second.code)
    assert served_build(site).build_id == second.build_id
    assert first.completed_at is not None and second.completed_at is not None
    assert second.completed_at >= first.completed_at
    rebuilt = mark_complete(read_build(first.code))  # building old code again makes it the newest
    assert served_build(site).build_id == rebuilt.build_id == first.build_id


def test_a_damaged_completion_mark_is_not_complete(site: Path) -> None:
    build = mark_complete(snapshot(site))
    (build.code / builds.COMPLETE).write_text("{not json")
    assert read_build(build.code).completed_at is None
    assert newest_complete(site) is None


def test_prune_keeps_the_newest_two_complete_builds_and_those_in_use(site: Path) -> None:
    oldest, older, newer, newest = (complete(site, str(n)) for n in range(4))
    keep = to_keep(site, {oldest.build_id})
    assert keep == {oldest.build_id, newer.build_id, newest.build_id}
    assert prune(site, keep) == [older.build_id]
    assert {b.build_id for b in all_builds(site)} == keep


def test_prune_keeps_a_young_incomplete_snapshot_and_drops_an_old_one(site: Path) -> None:
    young = snapshot(site)
    (site / "pages" / "index.py").write_text("# other\n")
    old = snapshot(site)
    long_ago = time.time() - builds.GRACE_S - 60
    os.utime(old.code, (long_ago, long_ago))
    assert prune(site, set()) == [old.build_id]
    assert [b.build_id for b in all_builds(site)] == [young.build_id]
