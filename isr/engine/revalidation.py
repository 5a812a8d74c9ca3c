"""On-demand revalidation: paths are regenerated now, tags mark cached paths stale."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from isr.engine.engine import Engine
from isr.errors import BadPath, FunctionError
from isr.site.paths import join_path, split_path


@dataclass
class Report:
    """The body of the revalidate endpoint's answer."""

    revalidated: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"revalidated": self.revalidated, "stale": self.stale, "errors": self.errors}

    def error(self, path: str, code: str, message: str) -> None:
        self.errors.append({"path": path, "code": code, "message": message})


async def revalidate(engine: Engine, paths: list[str], tags: list[str]) -> Report:
    report = Report()
    await asyncio.gather(*(_path(engine, path, report) for path in dict.fromkeys(paths)))
    for tag in dict.fromkeys(tags):
        for path in await engine.store.backend.paths_with_tag(engine.store.build_id, tag):
            if path not in report.stale and await engine.store.expire(path):
                report.stale.append(path)
    return report


async def _path(engine: Engine, raw: str, report: Report) -> None:
    """Regenerate one path (as a URL path: percent-encoded or not), or say why not."""
    try:
        segments = split_path(raw.partition("?")[0])
    except BadPath as exc:
        report.error(raw, "NOT_FOUND", str(exc))
        return
    match = engine.site.routes.match(segments)
    if match is None:
        report.error(raw, "NOT_FOUND", "no route matches this path")
        return
    route, params = match
    if not route.cached:
        report.error(raw, "NOT_CACHED", f"{route.file} is {'an API function' if route.kind == 'API' else 'an SSR page'}, never cached")
        return
    path = join_path(segments)
    try:
        if not await engine.allowed(route, path):
            report.error(raw, "NOT_FOUND", f"{route.page} has fallback: False and this path is not in get_static_paths")
            return
        await engine.revalidate(route, params, path)
    except FunctionError as exc:
        report.error(raw, exc.code, str(exc))
        return
    report.revalidated.append(raw)
