"""File-system routing: pages/ files to routes, and a request path to its route."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from isr.errors import SiteError
from isr.site.config import FunctionConfig, Revalidate, SiteConfig
from isr.site.module import Fallback, ModuleInfo, RouteKind, read_module

SegmentKind = Literal["static", "dynamic", "catchall", "optional"]
Params = dict[str, str | list[str]]

_RANK: dict[SegmentKind, int] = {"static": 0, "dynamic": 1, "catchall": 2, "optional": 3}
_DYNAMIC = re.compile(r"^\[(\[)?(\.\.\.)?([A-Za-z_][A-Za-z0-9_]*)\](\])?$")


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    name: str  # the literal for static segments, the param name otherwise


@dataclass(frozen=True)
class Route:
    """One page module or API function and everything the engine needs to serve it."""

    file: str  # relative to the site, e.g. "pages/blog/[slug].py"
    page: str  # the route pattern, e.g. "/blog/[slug]"
    segments: tuple[Segment, ...]
    info: ModuleInfo
    function: FunctionConfig
    revalidate: Revalidate
    templates: tuple[str, ...]  # names under pages/ to try in order; () for API functions

    @property
    def kind(self) -> RouteKind:
        return self.info.kind

    @property
    def fallback(self) -> Fallback:
        return self.info.settings.get("fallback", "blocking")  # type: ignore[no-any-return]

    @property
    def is_dynamic(self) -> bool:
        return any(s.kind != "static" for s in self.segments)

    @property
    def cached(self) -> bool:
        return self.kind in ("static", "ISR")

    def match(self, parts: list[str]) -> Params | None:
        params: Params = {}
        for i, segment in enumerate(self.segments):
            if segment.kind in ("catchall", "optional"):
                rest = parts[i:]
                if not rest and segment.kind == "catchall":
                    return None
                if rest:
                    params[segment.name] = rest
                return params
            if i >= len(parts):
                return None
            if segment.kind == "static":
                if parts[i] != segment.name:
                    return None
            else:
                params[segment.name] = parts[i]
        return params if len(parts) == len(self.segments) else None

    def segments_for(self, params: Params) -> list[str]:
        """The decoded path segments of this route with these params (for get_static_paths)."""
        parts: list[str] = []
        for segment in self.segments:
            if segment.kind == "static":
                parts.append(segment.name)
                continue
            value = params.get(segment.name)
            if segment.kind == "dynamic":
                if not isinstance(value, str) or not value:
                    raise SiteError(f"{self.file}: get_static_paths: param {segment.name!r} must be a non-empty string")
                parts.append(value)
            elif value is not None:
                if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                    raise SiteError(f"{self.file}: get_static_paths: param {segment.name!r} must be a list of strings")
                parts.extend(value)
            elif segment.kind == "catchall":
                raise SiteError(f"{self.file}: get_static_paths: param {segment.name!r} is required")
        return parts

    def sort_key(self) -> tuple[tuple[int, str], ...]:
        return tuple((_RANK[s.kind], s.name if s.kind == "static" else "") for s in self.segments)


class RouteTable:
    """All routes of a site, ordered so the first match is the most specific one."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = sorted(routes, key=Route.sort_key)
        self.by_page = {r.page: r for r in self.routes}
        self.by_file = {r.file: r for r in self.routes}

    def match(self, parts: list[str]) -> tuple[Route, Params] | None:
        for route in self.routes:
            params = route.match(parts)
            if params is not None:
                return route, params
        return None


def scan_routes(site: Path, config: SiteConfig) -> RouteTable:
    pages = site / "pages"
    routes: dict[tuple[tuple[int, str], ...], Route] = {}  # by shape: [id] and [slug] clash
    for file in sorted(pages.rglob("*.py")):
        rel = file.relative_to(pages)
        if any(part.startswith(("_", ".")) for part in rel.parts) or rel.as_posix() == "404.py":
            continue
        route = _route(site, file, rel, config)
        other = routes.get(route.sort_key())
        if other:
            raise SiteError(f"{other.file} and {route.file} both define the route {route.page}")
        routes[route.sort_key()] = route
    return RouteTable(list(routes.values()))


def _route(site: Path, file: Path, rel: Path, config: SiteConfig) -> Route:
    relfile = f"pages/{rel.as_posix()}"
    names = list(rel.with_suffix("").parts)
    if names[-1] == "index":
        names.pop()
    segments = tuple(_segment(name, relfile) for name in names)
    for segment in segments[:-1]:
        if segment.kind in ("catchall", "optional"):
            raise SiteError(f"{relfile}: a catch-all segment must be the last one")
    info = read_module(file, relfile)
    is_api = bool(names) and names[0] == "api"
    if is_api and info.kind != "API":
        raise SiteError(f"{relfile}: an API function must define handler(request, response)")
    revalidate = info.settings.get("revalidate", config.revalidate)
    templates = () if info.kind == "API" else _templates(info, rel)
    return Route(
        file=relfile,
        page="/" + "/".join(names),
        segments=segments,
        info=info,
        function=config.function_config(relfile),
        revalidate=False if info.kind == "static" else revalidate,
        templates=templates,
    )


def _segment(name: str, relfile: str) -> Segment:
    if "[" not in name and "]" not in name:
        return Segment("static", name)
    match = _DYNAMIC.match(name)
    if not match or bool(match[1]) != bool(match[4]) or (match[1] and not match[2]):
        raise SiteError(f"{relfile}: {name!r} is not a valid segment ([name], [...name] or [[...name]])")
    kind: SegmentKind = "optional" if match[1] else "catchall" if match[2] else "dynamic"
    return Segment(kind, match[3])


def _templates(info: ModuleInfo, rel: Path) -> tuple[str, ...]:
    """`template` beside the module, then under pages/; by default the sibling .html."""
    name = info.settings.get("template")
    if name is None:
        return (rel.with_suffix(".html").as_posix(),)
    folder = rel.parent.as_posix()
    return (name,) if folder == "." else (f"{folder}/{name}", name)
