"""Processes a function starts end with its worker (SPEC §4, "What a function may not do").

Each worker leads its own session and process group, so everything a function starts
(`subprocess.Popen`, `os.fork`) is in that group and one `killpg` ends it all. A worker
is also a child subreaper: a daemon that double-forks and calls setsid to leave the
group is reparented to the worker, not to init, so a walk of the worker's descendants
still finds it while the worker lives. Killing a worker therefore first stops its group
(nothing in it can fork any more), stops every descendant outside the group, and then
SIGKILLs them all.

PR_SET_PDEATHSIG is not inherited across fork, so a `kill -9` of the server (which takes
the forkserver and then every worker with it) would leave the function's processes
behind. A reaper, started by the server as a separate program, learns each worker's pid
over a pipe; when the pipe closes (the server exited in any way, SIGKILL included) it
kills those groups. Daemons that left their group *and* outlive a SIGKILLed server are
the one case not covered without a cgroup.

This file uses the standard library only: the reaper runs it as a script (`python -I -S`),
without importing isr or its dependencies, so it starts in milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

_PR_SET_CHILD_SUBREAPER = 36
SETTLE_S = 1.0  # how long kill_tree waits for a forking tree to hold still


def lead_own_group() -> None:
    """In a new worker: its own session and process group, and subreaper of its descendants."""
    try:
        os.setsid()
    except OSError:
        pass  # already a group leader
    try:
        ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except (OSError, AttributeError):
        pass  # not Linux: the process group still holds what the function starts


def kill_tree(pid: int, members: Path | None = None) -> None:
    """SIGKILL a live worker, its process group and every descendant that left the group.

    `members`: the worker's cgroup.procs, where it has a cgroup of its own (see kill_group).
    Blocking (it reads /proc): call it off the event loop.
    """
    _signal_group(pid, signal.SIGSTOP)  # the group can no longer fork
    stopped: set[int] = set()
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        found = _live_descendants(pid) - stopped
        if not found:
            break
        for child in found:
            _signal(child, signal.SIGSTOP)
        stopped |= found
    for child in stopped:
        _signal(child, signal.SIGKILL)
    kill_group(pid, members)


def kill_group(pgid: int, members: Path | None = None) -> None:
    """SIGKILL a process group (a dead worker's, whose members outlive it) and its cgroup.

    A cgroup holds every process started below the worker, daemons included, even
    after the worker died and they were reparented to init: where workers have one,
    what it lists is killed too, until it is empty.
    """
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + SETTLE_S
    while members is not None and time.monotonic() < deadline:
        try:
            pids = [int(line) for line in members.read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.01)  # killed processes leave the list as they exit


def _live_descendants(root: int) -> set[int]:
    """Every process below `root` that still runs (zombies have no children left)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _stat(int(name))
        if stat is not None and stat[1] != "Z":
            children.setdefault(stat[0], []).append(int(name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0]


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Reaper:
    """The server's side of the reaper: tells it which worker groups exist."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, start_new_session=True,  # outside the server's group: it outlives it
            )  # fmt: skip
        except OSError:
            self.process = None

    def watch(self, pid: int, members: Path | None) -> None:
        self._tell(f"+{pid} {members or ''}\n")

    def forget(self, pid: int) -> None:
        self._tell(f"-{pid}\n")

    def _tell(self, line: str) -> None:
        if self.process is None or self.process.stdin is None:
            return
        try:
            self.process.stdin.write(line.encode())
            self.process.stdin.flush()
        except OSError:  # it died; the server's own kills still hold
            self.process = None

    def close(self) -> None:
        """Every worker is gone by now: the reaper reads EOF and exits. Blocking: it may still be starting."""
        if self.process is not None and self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            self.process.wait()


def reap(commands: IO[bytes]) -> None:
    """The reaper's loop: `+pid [cgroup.procs]` / `-pid` lines until EOF, then kill what is still listed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server, which then closes us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: dict[int, Path | None] = {}
    for line in commands:
        text = line.decode("utf-8", "replace").strip()
        sign, (number, _, members) = text[:1], text[1:].partition(" ")
        if sign == "+" and number.isdigit():
            groups[int(number)] = Path(members) if members else None
        elif sign == "-" and number.isdigit():
            groups.pop(int(number), None)
    for pid, procs in groups.items():
        kill_group(pid, procs)  # the workers died with the server: their pids are no longer theirs


if __name__ == "__main__":
    reap(sys.stdin.buffer)
