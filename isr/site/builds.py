"""Snapshots of a site's code, one per build id, in the site's `.isr/builds/` folder.

A running server reads its code from a snapshot, never from the live folder, so editing
the site cannot change or break it. `isr build` marks its snapshot complete once every
page is prerendered; `isr serve` (and its `kill -HUP`) runs the newest complete one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from isr.errors import SiteError
from isr.site.site import build_id, code_files

BUILDS = Path(".isr") / "builds"
COMPLETE = ".complete.json"  # in a snapshot's folder; never one of its code files
KEEP_COMPLETE = 2  # complete builds kept besides the ones in use
GRACE_S = 3600.0  # an incomplete snapshot this young may be a server's that has not announced itself yet


@dataclass(frozen=True)
class Build:
    build_id: str
    code: Path  # the snapshot: pages/, isr.json, Python beside pages/
    completed_at: float | None  # Unix time `isr build` finished it; None: not complete


def builds_folder(root: Path) -> Path:
    return root / BUILDS


def snapshot(root: Path) -> Build:
    """Copy the live code into its build's snapshot (kept as it is if the build has one).

    The copy goes to a temporary folder renamed into place, so a half-written snapshot
    is never used; its build id is the hash of what was copied, so an edit made while
    copying cannot give a snapshot another build's id.
    """
    temporary = builds_folder(root) / f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        _copy_code(root, temporary)
        final = temporary.parent / build_id(temporary)
        try:
            temporary.rename(final)
        except OSError:
            if not final.is_dir():
                raise
            # That build has its snapshot already (maybe made concurrently): the same code.
            shutil.rmtree(temporary, ignore_errors=True)
            os.utime(final)  # in use again: young, so a concurrent prune leaves it
    except OSError as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        raise SiteError(f"cannot snapshot the site's code into {temporary.parent}: {exc.strerror or exc}") from None
    return read_build(final)


def _copy_code(root: Path, target: Path) -> None:
    for file in code_files(root):
        copy = target / file.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, copy)
    (target / "pages").mkdir(parents=True, exist_ok=True)


def read_build(code: Path) -> Build:
    try:
        completed_at = float(orjson.loads((code / COMPLETE).read_bytes())["completed_at"])
    except (OSError, ValueError, KeyError, TypeError):
        completed_at = None
    return Build(code.name, code, completed_at)


def mark_complete(build: Build) -> Build:
    """Record that the build's prerender succeeded: it is now what `isr serve` runs."""
    now = time.time()
    temporary = build.code / f"{COMPLETE}.{secrets.token_hex(4)}"
    temporary.write_bytes(orjson.dumps({"build_id": build.build_id, "completed_at": now}))
    os.replace(temporary, build.code / COMPLETE)  # atomic: readers see no marker or a whole one
    return Build(build.build_id, build.code, now)


def all_builds(root: Path) -> list[Build]:
    """Every snapshot, the newest complete first, then the incomplete ones."""
    folder = builds_folder(root)
    if not folder.is_dir():
        return []
    builds = [read_build(f) for f in folder.iterdir() if f.is_dir() and not f.name.startswith(".")]
    return sorted(builds, key=lambda b: -(b.completed_at or 0.0))


def newest_complete(root: Path) -> Build | None:
    return next((b for b in all_builds(root) if b.completed_at is not None), None)


def served_build(root: Path) -> Build:
    """What `isr serve` runs: the newest complete build, else a snapshot of the live code."""
    return newest_complete(root) or snapshot(root)


def to_keep(root: Path, in_use: set[str]) -> set[str]:
    """The newest complete builds and every build a live server uses."""
    complete = [b.build_id for b in all_builds(root) if b.completed_at is not None]
    return set(complete[:KEEP_COMPLETE]) | in_use


def prune(root: Path, keep: set[str]) -> list[str]:
    """Delete the snapshots not in `keep` (and leftovers of interrupted copies); their ids."""
    folder = builds_folder(root)
    if not folder.is_dir():
        return []
    dropped = []
    for entry in folder.iterdir():
        if entry.is_dir() and _droppable(entry, keep, time.time()):
            shutil.rmtree(entry, ignore_errors=True)
            dropped.append(entry.name)
    return dropped


def _droppable(entry: Path, keep: set[str], now: float) -> bool:
    if entry.name.startswith(".tmp-"):
        return not _alive(entry.name)
    if entry.name.startswith(".") or entry.name in keep:
        return False
    return read_build(entry).completed_at is not None or now - entry.stat().st_mtime > GRACE_S


def _alive(temporary: str) -> bool:
    """Whether the process copying into a `.tmp-<pid>-…` folder still runs."""
    try:
        os.kill(int(temporary.split("-")[1]), 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
