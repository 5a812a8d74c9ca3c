"""`isr serve --workers N`: keeps N server processes running on one port, as gunicorn's
arbiter does.

A server that dies is started again while the others keep serving; one that keeps dying
young backs off (1 s, doubling to 30 s; reset once a server lived 30 s), each restart
logged. SIGTERM and SIGINT stop them all; SIGHUP reaches every one (each switches to
the newest complete build). A server that cannot start at all (a bad site, a port
taken) stops the whole group when it is one of the first N: restarting cannot help.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_S = 30.0  # a server that lived this long was not in a crash loop
POLL_S = 0.1
STOP_TIMEOUT_S = 10.0
CANNOT_START = 3  # a server's exit code when it could not start serving (as gunicorn's boot error)


@dataclass
class Slot:
    """One of the N servers: its current process, or when it is due to start again."""

    number: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = 0.0  # seconds before the next restart, if it dies young again
    due: float | None = None  # monotonic time of a pending restart
    restarts: int = 0


class Supervisor:
    def __init__(self, command: Callable[[], list[str]], env: dict[str, str], count: int, on_hangup: Callable[[], None]) -> None:
        """`command` is asked anew at every start: a HUP may have changed the build to run."""
        self.command = command
        self.on_hangup = on_hangup
        self.env = env
        self.slots = [Slot(n + 1) for n in range(count)]
        self.stopping: int | None = None  # the signal that stops the group
        self.code = 0

    def run(self) -> int:
        signal.signal(signal.SIGHUP, self._hangup)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._stop)
        for slot in self.slots:
            self._start(slot)
        while self.stopping is None:
            self._watch(time.monotonic())
            time.sleep(POLL_S)
        self._stop_all()
        return self.code

    def _start(self, slot: Slot) -> None:
        # Born ignoring SIGHUP (until its server installs its handler): a HUP forwarded
        # while it starts must not kill it.
        slot.process = subprocess.Popen(self.command(), env=self.env, preexec_fn=_ignore_hangup)
        slot.started, slot.due = time.monotonic(), None

    def _watch(self, now: float) -> None:
        for slot in self.slots:
            if slot.due is not None and now >= slot.due:
                slot.restarts += 1
                self._start(slot)
                _say(f"server {slot.number} started again (pid {_pid(slot)}, restart {slot.restarts})")
            elif slot.process is not None and (code := slot.process.poll()) is not None:
                self._died(slot, code, now)

    def _died(self, slot: Slot, code: int, now: float) -> None:
        lived = now - slot.started
        slot.process = None
        if code == CANNOT_START and slot.restarts == 0:
            _say(f"server {slot.number} could not start; stopping")
            self.stopping, self.code = signal.SIGTERM, 1
            return
        slot.backoff = backoff(slot.backoff, lived)
        slot.due = now + slot.backoff
        _say(f"server {slot.number} {_death(code)} after {lived:.1f} s; starting it again in {slot.backoff:g} s")

    def _hangup(self, signum: int, _: object) -> None:
        self.on_hangup()
        self._forward(signum)

    def _stop(self, signum: int, _: object) -> None:
        self.stopping = signum  # forwarded by the main loop as it ends

    def _forward(self, signum: int) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.send_signal(signum)

    def _stop_all(self) -> None:
        self._forward(self.stopping or signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for slot in self.slots:
            if slot.process is None:
                continue
            try:
                slot.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait()


def backoff(previous: float, lived: float) -> float:
    """Seconds to wait before starting a server that died after `lived` seconds again."""
    if lived >= STABLE_S:
        return 0.0  # not a crash loop: at once, as gunicorn does
    return min(BACKOFF_MAX_S, max(BACKOFF_FIRST_S, previous * 2))


def _ignore_hangup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _death(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _pid(slot: Slot) -> int:
    return slot.process.pid if slot.process is not None else 0


def _say(line: str) -> None:
    print(f"isr: {line}", file=sys.stderr, flush=True)
