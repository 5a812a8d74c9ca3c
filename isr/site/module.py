"""What a page module declares, read from its source without running it.

The server process never imports user code (that happens inside invocations), so
the module-level settings `revalidate`, `fallback` and `template` must be literals,
as Next.js requires its route segment config to be statically analysable.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from isr.errors import SiteError
from isr.site.config import valid_revalidate

RouteKind = Literal["static", "ISR", "SSR", "API"]
Fallback = Literal["blocking"] | bool

_FUNCTIONS = {"get_static_props", "get_server_side_props", "get_static_paths", "handler"}
_SETTINGS = {"revalidate", "fallback", "template"}


@dataclass(frozen=True)
class ModuleInfo:
    functions: frozenset[str]
    settings: dict[str, Any]

    @property
    def kind(self) -> RouteKind:
        if "handler" in self.functions:
            return "API"
        if "get_server_side_props" in self.functions:
            return "SSR"
        if "get_static_props" in self.functions:
            return "ISR"
        return "static"


def read_module(path: Path, relpath: str) -> ModuleInfo:
    try:
        tree = ast.parse(path.read_bytes(), filename=relpath)
    except SyntaxError as exc:
        raise SiteError(f"{relpath}:{exc.lineno}: syntax error: {exc.msg}") from None
    except (OSError, ValueError) as exc:
        raise SiteError(f"{relpath}: cannot read page module ({exc})") from None
    functions: set[str] = set()
    settings: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in _FUNCTIONS:
            functions.add(node.name)
        for name, value in _assignments(node):
            if name in _SETTINGS:
                settings[name] = _literal(value, name, relpath)
    info = ModuleInfo(frozenset(functions), settings)
    _validate(info, relpath)
    return info


def _assignments(node: ast.stmt) -> list[tuple[str, ast.expr]]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return [(target.id, node.value)] if isinstance(target, ast.Name) else []
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        return [(node.target.id, node.value)]
    return []


def _literal(value: ast.expr, name: str, relpath: str) -> Any:
    try:
        return ast.literal_eval(value)
    except ValueError:
        raise SiteError(f"{relpath}: `{name}` must be a literal value (it is read without running the module)") from None


def _validate(info: ModuleInfo, relpath: str) -> None:
    revalidate = info.settings.get("revalidate")
    if revalidate is not None and not valid_revalidate(revalidate):
        raise SiteError(f"{relpath}: revalidate must be whole seconds >= 1, or False")
    fallback = info.settings.get("fallback", "blocking")
    if fallback not in ("blocking", True, False):
        raise SiteError(f'{relpath}: fallback must be "blocking", True or False')
    template = info.settings.get("template")
    if template is not None and not isinstance(template, str):
        raise SiteError(f"{relpath}: template must be a file name string")
    if {"get_static_props", "get_server_side_props"} <= info.functions:
        raise SiteError(f"{relpath}: a page has get_static_props or get_server_side_props, not both")

