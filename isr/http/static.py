"""Files from the site's public/ folder, and nothing outside it."""

from __future__ import annotations

from pathlib import Path


class PublicFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    def find(self, segments: list[str]) -> Path | None:
        """The file these (already decoded and checked) segments name, if it is public."""
        if not segments or any(s.startswith(".") for s in segments):
            return None  # dot-files (.env, .git) are never served
        path = self.folder.joinpath(*segments)
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_file() or not resolved.is_relative_to(self.folder):
            return None
        return resolved
