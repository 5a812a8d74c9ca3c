"""Shared helpers of the function-logs e2e tests (issue 5) on tests/sites/logs.

The test modules import its helpers.

The logs site: `pages/isr/[name].py` (ISR, revalidate 1, prints `isr-print:<name>` and
`isr-stderr:<name>`, raises when `$ISR_CONTROL_DIR/isr-<name>.json` says {"mode": "raise"}),
`pages/posts/[id].py` (get_static_paths prints `paths-print:posts`), `pages/ssr.py`
(prints `ssr-print:<tag>`), `pages/api/hello.py` (prints `hello-line-1:<tag>` and
`hello-line-2`, `?sleep=<ms>`), `pages/api/other.py` (prints `other-print:<tag>`),
`pages/api/boom/[n].py` (prints `boom-before:<n>`, then raises), `pages/api/hang.py`
(prints `hang-before`, then runs past its 1 s maxDuration).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from e2e_support import REPO, TRACEBACK, Server, Site, cli_output, wait_for

TOKEN = "logs-token-9d41c7"  # tests/sites/logs/.env
FIELDS = {
    "time", "function", "path", "kind", "status", "duration_ms", "memory_mb",
    "cache", "error", "instance", "lines",
}  # fmt: skip

HELLO = "pages/api/hello.py"
OTHER = "pages/api/other.py"
BOOM = "pages/api/boom/[n].py"
HANG = "pages/api/hang.py"
ISR = "pages/isr/[name].py"
POSTS = "pages/posts/[id].py"
SSR = "pages/ssr.py"

_tags = itertools.count(1)


def unique(prefix: str) -> str:
    """A tag no other request of the run uses."""
    return f"{prefix}-{os.getpid()}-{next(_tags)}"


def logs_site(tmp_path: Path) -> Site:
    return Site.copy("logs", tmp_path)


def log_folder(site: Site) -> Path:
    return site.root / ".isr" / "logs"


# ------------------------------------------------------------------ the disk store


def stored(site: Site, errors: bool = False) -> list[dict[str, Any]]:
    """What the site's disk store holds now (read in this process, as `isr logs` does)."""
    from isr.logs.record import Filter
    from isr.logs.store import LogStore

    if not log_folder(site).exists():
        return []
    store = LogStore(log_folder(site))
    try:
        return [r.as_json() for r in store.read(Filter(errors=errors))]
    finally:
        store.close()


def wait_stored(
    site: Site, match: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 5.0,
    errors: bool = False, what: str = "records in the disk store",
) -> list[dict[str, Any]]:  # fmt: skip
    """Wait until at least `count` stored records match; return the matching ones."""

    def found() -> list[dict[str, Any]]:
        hits = [r for r in stored(site, errors) if match(r)]
        return hits if len(hits) >= count else []

    return wait_for(found, timeout, interval=0.05, what=what)


def cli_records(site: Site, *args: str) -> list[dict[str, Any]]:
    """`isr logs SITE --json ARGS`: one JSON object per line, parsed."""
    proc = site.cli("logs", str(site.root), "--json", *args)
    assert proc.returncode == 0, cli_output(proc)
    assert TRACEBACK not in proc.stderr, cli_output(proc)
    records = []
    for line in proc.stdout.splitlines():
        assert line.strip(), f"blank line in --json output:\n{cli_output(proc)}"
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(
                f"--json printed a line that is not JSON: {line!r}\n{cli_output(proc)}"
            ) from None
        assert isinstance(record, dict), line
        records.append(record)
    return records


def by_path(records: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("path") == path]


def has_line(record: dict[str, Any], text: str) -> bool:
    return text in (record.get("lines") or [])


def assert_record_shape(record: dict[str, Any]) -> None:
    missing = FIELDS - set(record)
    assert not missing, f"record lacks {sorted(missing)}: {record}"
    assert isinstance(record["time"], (int, float)) and abs(record["time"] - time.time()) < 86400, (
        record
    )
    assert isinstance(record["status"], int), record
    assert isinstance(record["duration_ms"], (int, float)) and record["duration_ms"] >= 0, record
    assert isinstance(record["memory_mb"], (int, float)) and record["memory_mb"] >= 0, record
    assert isinstance(record["lines"], list) and all(isinstance(x, str) for x in record["lines"]), (
        record
    )
    assert isinstance(record["instance"], str) and record["instance"], record


def seed(site: Site, records: list[dict[str, Any]]) -> None:
    """Write records into the site's disk store directly (while no server runs)."""
    from isr.logs.record import LogRecord
    from isr.logs.store import LogStore

    store = LogStore(log_folder(site))
    try:
        store.append([LogRecord.from_json(r) for r in records])
    finally:
        store.close()


def seed_record(path: str, function: str = HELLO, status: int = 200, at: float | None = None,
                error: str | None = None, lines: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "function": function, "path": path, "kind": "api", "status": status, "duration_ms": 1.0,
        "memory_mb": 20.0, "cache": None, "error": error, "message": None, "instance": "seeded",
        "lines": lines or [], "time": at if at is not None else time.time(),
    }  # fmt: skip


# ---------------------------------------------------------------- a pinned server


@dataclass
class PinnedServer(Server):
    """A server that comes back on the same port when restarted (a follower's URL stays valid)."""

    pinned: int = 0

    def command(self) -> list[str]:
        if not self.pinned:
            self.pinned = self.port
        self.port = self.pinned
        return super().command()


# ------------------------------------------------------------- `isr logs --follow`


class Follower:
    """`isr logs --follow --json ...` in a subprocess; its output lines are collected by threads."""

    def __init__(self, site: Site, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = ["logs", "--follow", "--json", *args]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "isr", *self.args],
            cwd=REPO, env=env or site.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        self.out: list[str] = []
        self.err: list[str] = []
        self._lock = threading.Lock()
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self, stream: Any, sink: list[str]) -> None:
        for line in stream:
            with self._lock:
                sink.append(line.rstrip("\n"))

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            lines = list(self.out)
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                raise AssertionError(
                    f"`isr logs --follow --json` printed a non-JSON line: {line!r}\n{self.describe()}"
                ) from None
        return records

    def wait(
        self, match: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        def found() -> dict[str, Any]:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the follower exited while waiting for {what}\n{self.describe()}"
                )
            return next((r for r in self.records() if match(r)), {})

        try:
            return wait_for(found, timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def connect(
        self,
        poke: Callable[[str], None],
        match: Callable[[dict[str, Any], str], bool],
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        """Wait until the follower streams live: poke (make a request tagged `tag`) every
        0.3 s until the record of one of those requests arrives."""
        deadline = time.monotonic() + timeout
        tags: list[str] = []
        while True:
            tag = unique("probe")
            tags.append(tag)
            poke(tag)
            pause = time.monotonic() + 0.3
            while time.monotonic() < pause:
                for record in self.records():
                    if any(match(record, t) for t in tags):
                        return record
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"the follower exited before it streamed anything\n{self.describe()}"
                    )
                time.sleep(0.03)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the follower received none of {len(tags)} probe requests in {timeout}s\n{self.describe()}"
                )

    def interrupt(self, timeout: float = 5.0) -> int:
        """Ctrl-C, as a user at a terminal would."""
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"`isr logs --follow` did not stop within {timeout}s of Ctrl-C\n{self.describe()}"
            ) from None
        self._drain()
        return code

    def kill(self) -> None:
        """Stop it (if still running) and close its pipes."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        self._drain()

    def _drain(self) -> None:
        for pump in self._pumps:
            pump.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def describe(self) -> str:
        with self._lock:
            out, err = "\n".join(self.out[-40:]), "\n".join(self.err[-40:])
        return f"--- follower {' '.join(self.args)} (exit {self.proc.poll()})\nstdout:\n{out}\nstderr:\n{err}"


# ------------------------------------------------------------------- raw SSE client


class SSE:
    """`GET /_isr/logs?follow=1&...` read with a plain HTTP client, line by line."""

    def __init__(
        self, port: int, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        query = urlencode({"follow": "1", **(params or {})})
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", f"/_isr/logs?{query}", headers=headers or {})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._pump_thread: threading.Thread | None = None
        self.ended_by: BaseException | None = None
        if self.status == 200:
            self._pump_thread = threading.Thread(target=self._pump, daemon=True)
            self._pump_thread.start()

    def _pump(self) -> None:
        try:
            while True:
                line = self.response.readline()
                if not line:
                    break
                self.lines.put(line.decode("utf-8").rstrip("\r\n"))
        except Exception as exc:  # noqa: BLE001 - closed by close(), or by the server: the end of the stream
            self.ended_by = exc
        self.lines.put(None)

    def next_line(self, deadline: float) -> str | None:
        """The next line (None at the end of the stream); fails at the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no SSE line before the deadline; seen so far: {self.seen[-20:]}")
        try:
            line = self.lines.get(timeout=remaining)
        except queue.Empty:
            raise AssertionError(
                f"no SSE line before the deadline; seen so far: {self.seen[-20:]}"
            ) from None
        if line is not None:
            self.seen.append(line)
        return line

    def wait_comment(self, text: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while (line := self.next_line(deadline)) != f": {text}":
            assert line is not None, f"stream ended before ': {text}': {self.seen}"

    def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        """The JSON of the next `data:` line (comments and blank lines skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(deadline)
            assert line is not None, f"the stream ended; seen: {self.seen}"
            if line.startswith("data:"):
                event: dict[str, Any] = json.loads(line[5:].strip())
                return event
            assert line == "" or line.startswith(":"), f"unexpected SSE line {line!r}"

    def events_until(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Events up to and including the first one that matches."""
        deadline = time.monotonic() + timeout
        events = []
        while True:
            event = self.next_event(max(0.01, deadline - time.monotonic()))
            events.append(event)
            if match(event):
                return events

    def close(self) -> None:
        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # ends a pending readline in the pump
            except OSError:
                pass
        if self._pump_thread is not None:
            self._pump_thread.join(5)
        self.response.close()
        self.conn.close()
