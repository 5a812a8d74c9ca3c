"""A worker process: runs the invocations its parent sends over a private pipe.

Each reply is one pickled Reply. A worker that ran out of memory says so and exits,
since its heap may be left in any state; the parent starts a fresh one.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from isr.errors import FunctionError, FunctionFailed, SiteError
from isr.runtime import capture, lending
from isr.runtime.containment import lead_own_group
from isr.runtime.invocation import Invocation
from isr.runtime.limits import die_with_parent, limit_memory, peak_memory_mb
from isr.runtime.renderer import Renderer
from isr.site.site import load_site


@dataclass
class Reply:
    value: Any = None
    error: tuple[str, str, str] | None = None  # FunctionError class name, message, detail
    duration_ms: float = 0.0
    memory_mb: float = 0.0
    exiting: bool = False  # the worker stops after this reply


def main(site_root: str, code_root: str, build_id: str, conn: Connection, memory_mb: int, environ: dict[str, str]) -> None:
    die_with_parent()  # the forkserver, which dies with the server
    lead_own_group()  # what the function starts is killed with this worker
    os.set_inheritable(conn.fileno(), False)  # a program it starts must not keep our pipe open: death is EOF
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server decides
    os.environ.clear()
    os.environ.update(environ)  # the server's, not the forkserver's snapshot of it
    load_env(Path(site_root))
    try:
        site = load_site(site_root, Path(code_root))
        if site.build_id != build_id:  # a snapshot is never edited: only a damaged one differs
            raise SiteError(f"the code in {code_root} is not build {build_id} (it hashes to {site.build_id})")
        # Code from the snapshot, data from the live folder: `pages._lib…` must not resolve
        # to the live copy, and relative paths of data files must.
        sys.path[:] = [p for p in sys.path if p not in ("", str(site.root))]
        os.chdir(site.root)
        renderer = Renderer(site)
    except Exception as exc:  # the server loaded this site already; report, do not hang
        conn.send_bytes(pickle.dumps(Reply(error=("FunctionFailed", f"worker cannot load the site: {exc}", ""), exiting=True)))
        return
    capture.install()
    limit_memory(memory_mb)
    loop = asyncio.new_event_loop()
    conn.send_bytes(pickle.dumps(Reply()))  # ready

    def emit(line: str) -> None:
        """Printed lines reach the parent at once, so a killed invocation keeps them."""
        conn.send_bytes(pickle.dumps(line))

    lending.install(lambda message: conn.send_bytes(pickle.dumps(message)))

    while True:
        try:
            invocation = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        reply = _run(loop, renderer, invocation, emit)
        try:
            conn.send_bytes(pickle.dumps(reply))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            conn.send_bytes(pickle.dumps(Reply(error=("FunctionFailed", f"{invocation.file}: result cannot be sent: {exc}", ""))))
        if reply.exiting:
            _wait_for_close(conn)  # alive, so the parent can find and kill what the function started
            return


def _wait_for_close(conn: Connection) -> None:
    while True:
        try:
            conn.recv_bytes()
        except Exception:  # EOF, or out of memory: the parent is killing us anyway
            return


def _run(loop: asyncio.AbstractEventLoop, renderer: Renderer, invocation: Invocation, emit: Callable[[str], None]) -> Reply:
    reply = Reply()
    started = time.perf_counter()
    with capture.captured(emit):
        try:
            reply.value = loop.run_until_complete(renderer.run(invocation))
        except MemoryError:
            reply.value = None
            reply.error = ("FunctionFailed", f"{invocation.file}: out of memory (over its {invocation.limits.memory} MB)", "")
            reply.exiting = True
        except FunctionError as exc:
            reply.error = (type(exc).__name__, str(exc), exc.detail)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt from user code
            reply.error = ("FunctionFailed", f"{invocation.file}: {type(exc).__name__}: {exc}", traceback.format_exc())
            reply.exiting = True
    reply.duration_ms = (time.perf_counter() - started) * 1000
    reply.memory_mb = peak_memory_mb()
    return reply


def load_env(site: Path) -> None:
    """The site's .env, under what the environment already sets (which wins)."""
    for key, value in dotenv_values(site / ".env").items():
        if value is not None:
            os.environ.setdefault(key, value)


def error_of(reply: Reply) -> FunctionError | None:
    if reply.error is None:
        return None
    name, message, detail = reply.error
    kind = next((c for c in _subclasses(FunctionError) if c.__name__ == name), FunctionFailed)
    return kind(message, detail)


def _subclasses(cls: type[FunctionError]) -> list[type[FunctionError]]:
    return [cls, *(s for c in cls.__subclasses__() for s in _subclasses(c))]
