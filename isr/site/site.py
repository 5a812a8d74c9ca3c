"""A site folder loaded once: config, routes, build id; nothing of it is run here.

A site has two roots. `root` is the live folder: public/, .env, cache/, .isr/ and the
working directory of its functions, so the data files they read stay live. `code` is
where pages/, isr.json and the Python beside pages/ are read from: a build's snapshot
(isr.site.builds) under `isr serve`, the live folder itself under `isr dev`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from isr.errors import ConfigError, SiteError
from isr.site.config import SiteConfig, load_config
from isr.site.routes import RouteTable, scan_routes

# Folders beside pages/ that are not the site's code.
_NOT_CODE = {"cache", "public", "tests", "benchmarks", "node_modules", "data"}


@dataclass(frozen=True)
class Site:
    root: Path
    code: Path
    config: SiteConfig
    routes: RouteTable
    build_id: str

    @property
    def pages(self) -> Path:
        return self.code / "pages"

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def not_found_file(self) -> str | None:
        """The site's 404 page, relative to the site, if it has one."""
        for name in ("pages/404.py", "pages/404.html"):
            if (self.code / name).is_file():
                return name
        return None


def load_site(root: str | Path, code: Path | None = None) -> Site:
    """The site in folder `root`, its code read from `code` (default: `root` itself)."""
    path = live_root(root)
    code = path if code is None else code.resolve()
    if not (code / "pages").is_dir():
        raise SiteError(f"{code} has no pages/ folder: the build's snapshot is gone; run `isr build`")
    try:
        config = load_config(code)
    except ConfigError as exc:  # name the file to fix: the live one, not its copy
        raise ConfigError(str(exc).replace(str(code), str(path), 1)) from None
    return Site(root=path, code=code, config=config, routes=scan_routes(code, config), build_id=build_id(code))


def live_root(root: str | Path) -> Path:
    """The site folder, checked: it exists and has pages/."""
    path = Path(root).resolve()
    if not path.is_dir():
        raise SiteError(f"site folder not found: {root}")
    if not (path / "pages").is_dir():
        raise SiteError(f"{root} is not an isr site: it has no pages/ folder")
    return path


def build_id(root: Path) -> str:
    """Hash of the site's code and templates: pages/, isr.json and Python code beside pages/,
    with isr's version and the layout of its stored records (so that servers of two
    layouts sharing a Redis never read each other's records).

    Data and public files are not code: changing them calls for revalidation, not a new build.
    """
    from isr import __version__
    from isr.cache.layout import MAGIC

    digest = hashlib.blake2b(digest_size=8)
    digest.update(__version__.encode() + MAGIC)
    for file in sorted(code_files(root)):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def code_files(root: Path) -> list[Path]:
    """What the build id hashes: pages/, isr.json, and Python packages beside pages/."""
    files = [f for f in (root / "pages").rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    files += [f for f in (root / "isr.json",) if f.is_file()]
    files += list(root.glob("*.py"))
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in _NOT_CODE and not folder.name.startswith((".", "_")) and (folder / "__init__.py").is_file():
            files += [f for f in folder.rglob("*.py") if "__pycache__" not in f.parts]
    return files
