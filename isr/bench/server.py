"""The server `isr bench SITE` starts itself when no --url is given, and the site's paths.

The server is `isr serve` in a subprocess of its own session on a free port, with a fresh
cache in a temporary folder unless --cache names one; it is stopped (its whole process
group) when the bench ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from isr.app import open_engine
from isr.bench.load import LoadError
from isr.constants import TOKEN_VARIABLE
from isr.site.site import Site

START_S = 60.0  # a server that does not answer within this is reported as failing to start
STOP_S = 10.0


@contextlib.contextmanager
def started(site: Path, cache: str | None, token: str) -> Iterator[str]:
    """`isr serve SITE` for the duration of the block; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="isr-bench-") as tmp:
        port = free_port()
        command = [sys.executable, "-m", "isr", "serve", str(site), "--host", "127.0.0.1", "--port", str(port), "--cache", cache or str(Path(tmp) / "cache")]
        env = {**os.environ, TOKEN_VARIABLE: token} if token else dict(os.environ)
        with open(Path(tmp) / "server.log", "wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_answering(proc, url, Path(tmp) / "server.log")
            yield url
        finally:
            stop(proc)


def wait_answering(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lines = log.read_text(errors="replace").strip().splitlines()
            raise LoadError(f"isr serve exited with {proc.returncode}: {lines[-1] if lines else 'no output'}")
        try:
            urllib.request.urlopen(url + "/_isr/bench-probe", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answered (404)
        except OSError:
            time.sleep(0.1)
    raise LoadError(f"isr serve did not answer within {START_S:g} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(STOP_S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def site_paths(site: Site, new_paths: int) -> list[str]:
    """Every prerendered path of the site (get_static_paths of each cached route, run in a
    throwaway cache), then `new_paths` never-seen paths under dynamic routes that render
    on demand (fallback not false)."""
    with tempfile.TemporaryDirectory(prefix="isr-bench-paths-") as tmp:
        engine = open_engine(site, str(Path(tmp) / "cache"))
        try:
            paths = [p for route in site.routes.routes if route.cached for p in sorted(await engine.static_paths(route, fresh=True))]
        finally:
            await engine.close()
    dynamic = [route.page for route in site.routes.routes if route.cached and route.is_dynamic and route.fallback is not False]
    if new_paths and not dynamic:
        raise LoadError("--new-paths: the site has no dynamic route that renders new paths (fallback false everywhere)")
    fresh = [new_path(dynamic[n % len(dynamic)], n) for n in range(new_paths)]
    return paths + fresh


def new_path(pattern: str, n: int) -> str:
    """The route pattern with every [param] or [...param] filled with a name never used."""
    parts = [f"bench-new-{n}" if part.startswith("[") else part for part in pattern.split("/")]
    return "/".join(parts)
