"""The function side: imports page modules once, calls them, renders both variants.

This is the only code that runs user code; it runs inside an invocation, in a worker
process, never in the server.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
import time
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import jinja2
import orjson
from markupsafe import escape

from isr.cache.record import HTML_TYPE, JSON_TYPE, Outcome, Record, make_variant, new_generation_id
from isr.constants import DATA_PREFIX
from isr.errors import FunctionError, FunctionFailed, NoResponse, ResponseTooLarge
from isr.runtime import api
from isr.runtime.datascript import dump_data, embed
from isr.runtime.invocation import Invocation
from isr.site.config import Revalidate, valid_revalidate
from isr.site.routes import Route
from isr.site.site import Site

# The fallback page is one per route and build, shared by every path: it finds its JSON
# variant from the address it is shown at.
_FALLBACK_SCRIPT = """(function(){var p=location.pathname.replace(/\\/+$/,""),url=%s+(p?p:"/index")+".json",tries=0;function poll(){fetch(url,{headers:{accept:"application/json"}}).then(function(r){if(r.status<500){location.reload()}else{retry()}},retry)}function retry(){if(++tries<30)setTimeout(poll,1000)}poll()})();"""
_DEFAULT_404 = b"<!doctype html><html><head><title>404: Not Found</title></head><body><h1>404</h1><p>This page could not be found.</p></body></html>"


@dataclass
class Context:
    """What get_static_props and get_server_side_props receive."""

    params: dict[str, Any]
    path: str
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


class Renderer:
    def __init__(self, site: Site) -> None:
        self.site = site
        if str(site.code) not in sys.path:
            sys.path.insert(0, str(site.code))
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(site.pages)), autoescape=True, auto_reload=False
        )
        self._modules: dict[str, ModuleType] = {}

    async def run(self, invocation: Invocation) -> Any:
        """Run one invocation; user errors become FunctionFailed with the traceback as detail."""
        try:
            return await self._dispatch(invocation)
        except (FunctionError, MemoryError):
            raise
        except Exception as exc:
            raise FunctionFailed(f"{invocation.file}: {type(exc).__name__}: {exc}", traceback.format_exc()) from None

    async def _dispatch(self, inv: Invocation) -> Any:
        event = inv.event
        if inv.kind == "not_found":
            return self.not_found_html("")  # one page for every path: it is kept per build
        route = self.site.routes.by_file[inv.file]
        if inv.kind == "paths":
            return await self.static_paths(route)
        if inv.kind == "fallback":
            return self.fallback_html(route)
        if inv.kind == "ssr":
            return await self.server_side(route, event)
        if inv.kind == "api":
            return await self.api(route, event)
        return (await self.static(route, event["path"], event["params"])).to_bytes()

    def module(self, file: str) -> ModuleType:
        module = self._modules.get(file)
        if module is None:
            module = self._modules[file] = self._import(file)
        return module

    def _import(self, file: str) -> ModuleType:
        name = "isr_pages." + file.removesuffix(".py").replace("/", ".")
        spec = importlib.util.spec_from_file_location(name, self.site.code / file)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise FunctionFailed(f"{file} failed to import: {type(exc).__name__}: {exc}", traceback.format_exc()) from None
        return module

    async def static_paths(self, route: Route) -> list[Any]:
        function = getattr(self.module(route.file), "get_static_paths", None)
        paths = await _call(function) if function else []
        if not isinstance(paths, list):
            raise FunctionFailed(f"{route.file}: get_static_paths must return a list")
        return paths

    async def static(self, route: Route, path: str, params: dict[str, Any]) -> Record:
        started = time.time()  # before any data is read: tag revalidations compare with it
        module = self.module(route.file)
        function = getattr(module, "get_static_props", None)
        result = await _call(function, Context(params, path)) if function else {"props": {}}
        return self._record(route, path, params, _check_result(result, route.file), route.revalidate, started)

    def _record(
        self, route: Route, path: str, params: dict[str, Any], result: dict[str, Any], default: Revalidate, started: float,
        best: bool = True,
    ) -> Record:
        """Both variants of a result; `best` compression for what is stored, not per request."""
        variant = functools.partial(make_variant, best=best)
        generation = new_generation_id()
        common = {"page": route.page, "params": params, "build_id": self.site.build_id, "generation": generation}
        outcome: Outcome
        if result.get("not_found"):
            outcome, data = "not_found", {"not_found": True, **common}
            payload = dump_data(data)
            html = variant(404, HTML_TYPE, embed(self.not_found_html(path), payload))
            json = variant(404, JSON_TYPE, payload)
        elif "redirect" in result:
            outcome, target = "redirect", result["redirect"]
            payload = dump_data({"redirect": target, **common})
            status = 308 if target["permanent"] else 307
            body = f'<!doctype html><a href="{escape(target["destination"])}">Redirecting…</a>'.encode()
            html = variant(status, HTML_TYPE, body, location=target["destination"])
            json = variant(200, JSON_TYPE, payload)
        else:
            outcome, props = "page", result["props"]
            payload = dump_data({"props": props, **common})
            page = self.render_template(route, template_variables(path, params, False, props))
            html = variant(200, HTML_TYPE, embed(page, payload))
            json = variant(200, JSON_TYPE, payload)
        self._check_size(route, html.bodies["identity"])
        return Record(
            path=path, page=route.page, build_id=self.site.build_id, generation=generation,
            started_at=started, generated_at=time.time(), revalidate=result.get("revalidate", default),
            tags=tuple(result.get("tags", ())), outcome=outcome, html=html, data=json,
        )

    def _check_size(self, route: Route, body: bytes) -> None:
        limit = self.site.config.response_body_limit
        if len(body) > limit:
            raise ResponseTooLarge(f"{route.file}: response of {len(body)} bytes is over the {limit}-byte limit")

    def render_template(self, route: Route, variables: dict[str, Any]) -> bytes:
        try:
            template = self.env.select_template(list(route.templates))
        except jinja2.TemplateNotFound:
            raise FunctionFailed(f"{route.file}: template not found under pages/: {' or '.join(route.templates)}") from None
        return template.render(variables).encode()

    def fallback_html(self, route: Route) -> bytes:
        """The route's fallback page: no props, no path, no params (it serves every path)."""
        page = self.render_template(route, template_variables("", {}, True))
        url = orjson.dumps(f"{DATA_PREFIX}{self.site.build_id}").decode()
        return embed(page, (_FALLBACK_SCRIPT % url).encode(), "__ISR_FALLBACK__", "text/javascript")

    def not_found_html(self, path: str) -> bytes:
        name = self.site.not_found_file
        if name is None:
            return _DEFAULT_404
        try:
            template = self.env.get_template(name.removeprefix("pages/").replace(".py", ".html"))
            return template.render(template_variables(path, {}, False)).encode()
        except jinja2.TemplateNotFound:
            raise FunctionFailed(f"{name}: its template {name.replace('.py', '.html')} is missing") from None

    async def server_side(self, route: Route, event: dict[str, Any]) -> dict[str, Any]:
        started = time.time()
        ctx = Context(event["params"], event["path"], event["query"], event["headers"], event["cookies"])
        result = _check_result(await _call(self.module(route.file).get_server_side_props, ctx), route.file, ssr=True)
        record = self._record(route, event["path"], event["params"], result, False, started, best=False)
        headers = {k: v for k, v in result.get("headers", {}).items() if not api.server_owned(k)}
        return {"html": record.html, "data": record.data, "headers": headers}


    async def api(self, route: Route, event: dict[str, Any]) -> dict[str, Any]:
        request, response = api.Request(event), api.Response()
        await _call(self.module(route.file).handler, request, response)
        if response.body is None:
            raise NoResponse(f"{route.file}: handler returned without sending a response")
        self._check_size(route, response.body)
        return {"status": response.status_code, "headers": response.headers, "body": response.body}


def template_variables(path: str, params: dict[str, Any], fallback: bool, props: dict[str, Any] | None = None) -> dict[str, Any]:
    """The engine's values as `isr.*`, and as plain names unless a prop has that name (props win)."""
    engine = {"path": path, "params": params, "fallback": fallback}
    return {**engine, "isr": engine, **(props or {})}


async def _call(function: Any, *args: Any) -> Any:
    result = function(*args)
    return await result if inspect.isawaitable(result) else result


def _check_result(result: Any, file: str, ssr: bool = False) -> dict[str, Any]:
    """Validate what get_static_props / get_server_side_props returned, with a message that says the fix."""
    name = "get_server_side_props" if ssr else "get_static_props"
    where = f"{file}: {name}"
    if not isinstance(result, dict):
        raise FunctionFailed(f'{where} must return a dict with "props", "not_found" or "redirect"')
    keys = {"props", "not_found", "redirect"} & set(result)
    if len(keys) != 1 or (result.get("not_found") is not True and "not_found" in keys):
        raise FunctionFailed(f'{where} must return exactly one of "props", "not_found": True or "redirect"')
    if "props" in result and not isinstance(result["props"], dict):
        raise FunctionFailed(f"{where}: props must be a dict")
    if "redirect" in result:
        target = result["redirect"]
        if not isinstance(target, dict) or not isinstance(target.get("destination"), str):
            raise FunctionFailed(f'{where}: redirect must be {{"destination": "/x", "permanent": False}}')
        result["redirect"] = {"destination": target["destination"], "permanent": bool(target.get("permanent", False))}
        _check_headers({"Location": target["destination"]}, where)
    if "revalidate" in result and (ssr or not valid_revalidate(result["revalidate"])):
        raise FunctionFailed(f"{where}: revalidate must be whole seconds >= 1, or False")
    tags = result.get("tags", [])
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
        raise FunctionFailed(f"{where}: tags must be a list of strings")
    headers = result.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise FunctionFailed(f"{where}: headers must be a dict of strings")
    _check_headers(headers, where)
    return result


def _check_headers(headers: dict[str, str], where: str) -> None:
    try:
        for name, value in headers.items():
            api.check_header(name, value)
    except ValueError as exc:
        raise FunctionFailed(f"{where}: {exc}") from None
