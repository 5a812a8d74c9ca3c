"""Files from the site's public/ folder, and nothing outside it.

The folder is indexed once at start-up (as `next start` serves the public/ of its
build), so a request never touches the disk to learn whether a file exists.
"""

from __future__ import annotations

from pathlib import Path


class PublicFiles:
    def __init__(self, folder: Path) -> None:
        self.files = _index(folder.resolve()) if folder.is_dir() else {}

    def find(self, segments: list[str]) -> Path | None:
        """The file these (already decoded and checked) segments name, if it is public."""
        return self.files.get("/".join(segments))


def _index(root: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue  # dot-files (.env, .git) are never served
        resolved = path.resolve()
        if resolved.is_file() and resolved.is_relative_to(root):  # no symlinks out of public/
            files[relative.as_posix()] = resolved
    return files
