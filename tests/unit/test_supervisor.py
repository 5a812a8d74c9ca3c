"""The `--workers` supervisor: back-off of a crash loop, and restarts that keep going."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from isr.cli.supervisor import BACKOFF_MAX_S, STABLE_S, backoff

SCRIPT = """
import sys
from isr.cli.supervisor import Supervisor
command = [sys.executable, "-c", "import sys; sys.exit(1)"]
sys.exit(Supervisor(lambda: command, {}, 1, lambda: None).run())
"""


def test_a_crash_loop_backs_off_doubling_to_a_cap() -> None:
    delays, previous = [], 0.0
    for _ in range(7):
        previous = backoff(previous, lived=0.2)
        delays.append(previous)
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert max(delays) == BACKOFF_MAX_S


def test_a_server_that_lived_long_is_started_again_at_once() -> None:
    assert backoff(16.0, lived=STABLE_S + 1) == 0.0
    assert backoff(0.0, lived=STABLE_S + 1) == 0.0
    assert backoff(0.0, lived=STABLE_S - 1) == 1.0


def test_a_dying_server_is_restarted_with_back_off_until_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    started = time.monotonic()
    while sum("exited with code 1" in line for line in lines) < 3 and time.monotonic() - started < 20:
        lines.append(proc.stderr.readline())  # a line per death and per restart
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=15)
    err = "".join(lines) + rest
    assert proc.returncode == 0, err
    deaths = [line for line in err.splitlines() if "exited with code 1" in line]
    assert [line.rsplit("again in ", 1)[1] for line in deaths[:3]] == ["1 s", "2 s", "4 s"], err
    assert err.count("started again") >= 2, err
    assert time.monotonic() - started >= 3  # it waited the back-off: 1 s, then 2 s
