"""Shared helpers of the function-runtime e2e tests (issue 3) on tests/sites/functions.

The test modules import its fixtures and helpers.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e_support import NO_STORE, TRACEBACK, Response, Server, ServerError, Site, request, wait_for

# Strings that must never reach a client of the functions site.
SOURCE_MARKER = "FUNC-SOURCE-MARKER-3d7e"  # in every function's source (and its raise lines)
DOTENV_SECRET = "DOTENV-SECRET-b52c"  # tests/sites/functions/.env, read by no function
PUBLIC_DOTENV_SECRET = "PUBLIC-DOTENV-SECRET-0e3f"  # tests/sites/functions/public/.env
LEAKS = (TRACEBACK, SOURCE_MARKER, DOTENV_SECRET, PUBLIC_DOTENV_SECRET)
FRAME_RE = re.compile(r'File "[^"]+", line \d+')

# A variable set both in the server's environment and in the site's .env.
SERVER_ENV = {"OVERRIDE_ME": "from-server-env"}


@dataclass
class FnSite(Site):
    """A copy of tests/sites/functions; its server also gets SERVER_ENV."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(SERVER_ENV)
        return env

    def marker(self, name: str) -> Path:
        """The file a function of the site writes to prove it ran (`mark(name)`)."""
        return self.control_dir / f"mark-{name}"

    def marker_text(self, name: str) -> str | None:
        path = self.marker(name)
        return path.read_text() if path.exists() else None

    def set_config(self, config: dict[str, Any]) -> None:
        (self.root / "isr.json").write_text(json.dumps(config, indent=2))

    def config(self) -> dict[str, Any]:
        return json.loads((self.root / "isr.json").read_text())


@pytest.fixture
def site(tmp_path: Path) -> FnSite:
    """Overrides the suite's `site` (basic) so that `serve` starts the functions site."""
    return FnSite.copy("functions", tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on the functions site for a whole module (tests use disjoint functions)."""
    fsite = FnSite.copy("functions", tmp_path_factory.mktemp("functions"))
    server = Server(fsite)
    try:
        server.start()
    except ServerError as exc:
        # free_port() picks a port before the server binds it; with other suites running
        # on the machine another process may take it first. Retry only that, once.
        if "cannot listen" not in str(exc):
            raise
        server.start()
    try:
        yield server
    finally:
        server.stop()


def fsite_of(server: Server) -> FnSite:
    assert isinstance(server.site, FnSite)
    return server.site


class Call:
    """A request running in a thread, to look at the server while it is in flight."""

    def __init__(self, server: Server, path: str, timeout: float = 30.0) -> None:
        self.result: Response | BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(server.port, path, timeout), daemon=True)
        self.thread.start()

    def _run(self, port: int, path: str, timeout: float) -> None:
        try:
            self.result = request(port, path, timeout=timeout)
        except BaseException as exc:  # reported by response()
            self.result = exc

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def response(self, timeout: float = 30.0) -> Response:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "request did not finish"
        if isinstance(self.result, BaseException):
            raise self.result
        assert self.result is not None
        return self.result


# --------------------------------------------------------------------- asserts


def assert_clean(resp: Response | bytes | str) -> None:
    """No traceback, no function source, no .env content in a response body."""
    body = resp.text if isinstance(resp, Response) else resp
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    for leak in LEAKS:
        assert leak not in body, f"response body leaks {leak!r}:\n{body[:3000]}"
    assert not FRAME_RE.search(body), f"response body shows a traceback frame:\n{body[:3000]}"


def assert_api_error(resp: Response, status: int, code: str, server: Server | None = None) -> dict[str, Any]:
    """An API error: status, x-isr-error-code, JSON {"error": {"code", "message", "id"}}."""
    where = f"{resp.describe()}\n{server.output() if server else ''}"
    assert resp.status == status, f"expected {status} {code}:\n{where}"
    assert resp.header("x-isr-error-code") == code, f"expected x-isr-error-code {code}:\n{where}"
    assert "json" in (resp.header("content-type") or ""), f"API error is not JSON:\n{where}"
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"no error object:\n{where}"
    error = body["error"]
    assert error.get("code") == code, f"error.code is not {code}:\n{where}"
    assert isinstance(error.get("message"), str) and error["message"], f"no error.message:\n{where}"
    assert isinstance(error.get("id"), str) and error["id"], f"no error.id:\n{where}"
    assert_clean(resp)
    assert "no-store" in (resp.header("cache-control") or ""), f"an error must not be cacheable:\n{where}"
    return error


def assert_page_error(resp: Response, status: int, code: str, server: Server | None = None) -> None:
    """A page error: status, x-isr-error-code, an HTML page (not JSON), never cacheable."""
    where = f"{resp.describe()}\n{server.output() if server else ''}"
    assert resp.status == status, f"expected {status} {code}:\n{where}"
    assert resp.header("x-isr-error-code") == code, f"expected x-isr-error-code {code}:\n{where}"
    assert "text/html" in (resp.header("content-type") or ""), f"page error is not HTML:\n{where}"
    assert "<html" in resp.text.lower(), f"page error is not an HTML page:\n{where}"
    assert_clean(resp)
    assert resp.header("cache-control") == NO_STORE, f"an error page must not be cacheable:\n{where}"
    assert resp.cache != "HIT", where


def api_ok(server: Server, path: str, **kw: Any) -> Any:
    """GET an API function that must answer 200 JSON; its decoded body."""
    resp = server.get(path, **kw)
    assert resp.status == 200, f"GET {path}: {resp.describe()}\n{server.output()}"
    return resp.json()


# ------------------------------------------------------------------- processes


def proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time in clock ticks) of a live process or zombie; None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root: int) -> dict[int, int]:
    """Every process below `root` (children, their children, ...): pid -> start time."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat is not None:
            parents.setdefault(stat[0], []).append((pid, stat[2]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child, started in parents.get(todo.pop(), []):
            if child not in found:
                found[child] = started
                todo.append(child)
    return found


def describe(pid: int) -> str:
    stat = proc_stat(pid)
    state, ppid = (stat[1], stat[0]) if stat else ("?", "?")
    return f"pid {pid} state {state} ppid {ppid}: {cmdline(pid)}"


def survivors(recorded: dict[int, int]) -> set[int]:
    """The recorded processes that still exist (alive or zombie)."""
    left = set()
    for pid, started in recorded.items():
        stat = proc_stat(pid)
        if stat is not None and stat[2] == started:
            left.add(pid)
    return left


def processes_with_env(needle: str) -> set[int]:
    """Processes (other than this one) whose environment contains `needle`."""
    found = set()
    raw = needle.encode()
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if raw in environ:
            found.add(pid)
    return found


def pid_gone(pid: int) -> bool:
    """The process has exited (a zombie counts as gone: it runs no code)."""
    stat = proc_stat(pid)
    return stat is None or stat[1] in ("Z", "X")


def wait_pid_file(fsite: FnSite, name: str, timeout: float = 15.0) -> int:
    text = wait_for(lambda: fsite.marker_text(name), timeout, what=f"marker {name}")
    return int(text)
