"""Helpers of the end-to-end suite: a test site in a temp folder, the `isr` CLI, a server
subprocess and a plain HTTP client that sends paths exactly as written."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "tests" / "sites"

START_DEADLINE_S = 20.0
STOP_DEADLINE_S = 10.0
CLI_TIMEOUT_S = 120.0

NO_STORE = "private, no-cache, no-store, max-age=0, must-revalidate"
TRACEBACK = "Traceback (most recent call last)"
# Strings that must never reach a client: file contents a response could leak.
SECRET_MARKERS = (
    "ENV-SECRET-5c1e9a",  # tests/sites/basic/.env
    "PAGE-SOURCE-MARKER-8f3b",  # every page module's source
    "HIDDEN-DOTFILE-MARKER-44d2",  # public/.hidden
    "root:x:0:0",  # /etc/passwd
)

DATA_SCRIPT_RE = re.compile(
    r"<script\b[^>]*\bid=[\"']?__ISR_DATA__[\"']?[^>]*>(.*?)</script", re.S | re.I
)
VALUE_RE = re.compile(r"VALUE=\[(.*?)\]", re.S)

T = TypeVar("T")


# --------------------------------------------------------------------------- HTTP


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header is joined with ", "
    body: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def cache(self) -> str | None:
        return self.header("x-isr-cache")

    @property
    def generation(self) -> str | None:
        return self.header("x-isr-generation")

    def describe(self) -> str:
        head = "\n".join(f"  {k}: {v}" for k, v in sorted(self.headers.items()))
        return f"HTTP {self.status}\n{head}\n  body[:600]: {self.text[:600]!r}"


def request(
    port: int,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30.0,
) -> Response:
    """One request on a fresh connection; `path` is sent byte for byte (no normalisation).

    Without an Accept-Encoding header http.client sends `Accept-Encoding: identity`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        merged: dict[str, str] = {}
        for name, value in resp.getheaders():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return Response(resp.status, merged, data, time.monotonic() - started)
    finally:
        conn.close()


def raw_request(port: int, raw: bytes, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes; return (status, headers, raw body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def embedded_data(html: str) -> dict[str, Any]:
    """The JSON object of the page's `<script id="__ISR_DATA__">`; exactly one must exist."""
    found = DATA_SCRIPT_RE.findall(html)
    assert len(found) == 1, f"expected one __ISR_DATA__ script, found {len(found)}:\n{html[:2000]}"
    data = json.loads(found[0])
    assert isinstance(data, dict), data
    return data


def rendered_value(html: str) -> str:
    match = VALUE_RE.search(html)
    assert match, f"no VALUE=[...] in page:\n{html[:1500]}"
    return match.group(1)


def data_path(build_id: str, path: str) -> str:
    """The JSON variant URL of a page path (`/` is `index.json`)."""
    if path == "/":
        return f"/_isr/data/{build_id}/index.json"
    return f"/_isr/data/{build_id}{path}.json"


def assert_no_leak(text: str | bytes) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    assert TRACEBACK not in text, f"traceback in response:\n{text[:3000]}"
    for marker in SECRET_MARKERS:
        assert marker not in text, f"response leaks {marker!r}:\n{text[:3000]}"


# ------------------------------------------------------------------------ waiting


def wait_for(
    check: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition"
) -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def wait_until(moment: float) -> None:
    """Sleep until time.monotonic() reaches `moment` (used to let a revalidate period pass)."""
    remaining = moment - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def concurrently(calls: Iterable[Callable[[], T]], timeout: float = 60.0) -> list[T]:
    """Run the calls in threads released together by a barrier; return results in order."""
    calls = list(calls)
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout)
            results[i] = call()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "concurrent requests did not finish"
    if errors:
        raise errors[0]
    return results


# --------------------------------------------------------------------------- site


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Site:
    """A copy of tests/sites/<name> in a temp folder, with its cache, control and render log."""

    root: Path
    cache: Path
    control_dir: Path
    render_log: Path
    workdir: Path

    @classmethod
    def copy(cls, name: str, tmp: Path) -> Site:
        root = tmp / "site"
        shutil.copytree(SITES / name, root, ignore=shutil.ignore_patterns("__pycache__"))
        control = tmp / "control"
        control.mkdir()
        return cls(root, tmp / "cache", control, tmp / "renders.log", tmp)

    @property
    def pages(self) -> Path:
        return self.root / "pages"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ISR_")}
        env.update(
            RENDER_LOG=str(self.render_log),
            ISR_CONTROL_DIR=str(self.control_dir),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            COLUMNS="200",
            NO_COLOR="1",
        )
        return env

    def control(self, name: str, **values: Any) -> None:
        """Atomically (re)write the control file of a steerable page."""
        tmp = self.control_dir / f".{name}.json.tmp"
        tmp.write_text(json.dumps(values))
        os.replace(tmp, self.control_dir / f"{name}.json")

    def renders(self, tag: str | None = None) -> list[float]:
        """Start times of the renders logged by the site's data functions (all, or one tag)."""
        if not self.render_log.exists():
            return []
        times = []
        for line in self.render_log.read_text().splitlines():
            name, _, stamp = line.partition("\t")
            if tag is None or name == tag:
                times.append(float(stamp))
        return times

    def render_tags(self) -> list[str]:
        if not self.render_log.exists():
            return []
        return [line.partition("\t")[0] for line in self.render_log.read_text().splitlines()]

    def count(self, tag: str) -> int:
        return len(self.renders(tag))

    def cli(
        self, *args: str, cwd: Path | None = None, timeout: float = CLI_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        env = self.env()
        if cwd is not None:
            # Run from another folder: make `python -m isr` importable there too.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return subprocess.run(
            [sys.executable, "-m", "isr", *args],
            cwd=cwd or REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def cli_output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


# ------------------------------------------------------------------------- server


class ServerError(AssertionError):
    pass


@dataclass
class Server:
    """`isr serve` in a subprocess (own process group), logs to files in the test's folder."""

    site: Site
    site_arg: str | None = None
    extra_args: tuple[str, ...] = ()
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_files: list[Path] = field(default_factory=list)
    cwd: Path | None = None  # where `isr serve` runs (default: the repository)

    # lifecycle -----------------------------------------------------------------
    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "isr", "serve", self.site_arg or str(self.site.root),
            "--host", "127.0.0.1", "--port", str(self.port), "--cache", str(self.site.cache),
            *self.extra_args,
        ]  # fmt: skip

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to answer."""
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.port = free_port()
        self.starts += 1
        out = self.site.workdir / f"server-{self.port}-{self.starts}.log"  # several servers may share a site
        self.log_files.append(out)
        env = self.site.env()
        if self.cwd is not None:  # make `python -m isr` importable from another folder
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with open(out, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.cwd or REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.proc

    def start(self) -> Server:
        self.spawn()
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        assert self.proc is not None
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ServerError(f"server exited with {code} before answering\n{self.output()}")
            try:
                request(self.port, "/__e2e_probe__", timeout=5)
                return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                self.kill9()
                raise ServerError(f"server did not answer within {START_DEADLINE_S}s\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL on timeout; also reap anything left in its process group."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group()
        return proc.returncode

    def kill9(self) -> None:
        """`kill -9` the server and every process it started (its process group)."""
        if self.proc is not None:
            self._kill_group()

    def _kill_group(self) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
            pass

    @contextmanager
    def running(self) -> Iterator[Server]:
        """Started for the block, stopped however it ends."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    @contextmanager
    def watched(self, request: Any) -> Iterator[Server]:
        """For one test of a shared server: started again if an earlier test left it dead, and
        its output shown if this test fails (`request`: pytest's FixtureRequest)."""
        yield self.ensure_running()
        self.show_output_if_failed(request)

    def restart(self) -> Server:
        self.stop()
        return self.start()

    def ensure_running(self) -> Server:
        """Start again if an earlier test left it dead (servers shared by a module)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        return self

    def show_output_if_failed(self, request: Any) -> None:
        """Print the server's logs under a failed test (`request`: pytest's FixtureRequest)."""
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(f"\n===== isr serve output (port {self.port}) =====\n{self.output()}")

    def output(self) -> str:
        parts = []
        for path in self.log_files:
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {path.name}\n{text[-8000:]}")
        return "\n".join(parts)

    # requests ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Response:
        return request(self.port, path, "GET", headers, **kw)

    def head(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Response:
        return request(self.port, path, "HEAD", headers, **kw)

    def request(self, method: str, path: str, **kw: Any) -> Response:
        return request(self.port, path, method, **kw)

    def raw(self, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        return raw_request(self.port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def page(self, path: str, status: int = 200, **kw: Any) -> Response:
        """GET that must answer `status`; the failure message shows the response and logs."""
        resp = self.get(path, **kw)
        assert resp.status == status, f"GET {path}: {resp.describe()}\n{self.output()}"
        return resp

    def build_id(self, path: str = "/about") -> str:
        """The build id, read from the data embedded in a page."""
        return str(embedded_data(self.page(path).text)["build_id"])


# ----------------------------------------------------------------- route tables


def route_line(output: str, route: str) -> str:
    """The line of a printed route table that has `route` as one whole cell."""
    for line in output.splitlines():
        if route in re.split(r"[\s│┃|║]+", line):
            return line
    raise AssertionError(f"route {route!r} is not a row of the route table:\n{output}")


def cells(line: str) -> list[str]:
    return [c.lower() for c in re.split(r"[\s│┃|║]+", line) if c]
