"""Per-invocation capture of what user code prints to stdout and stderr."""

from __future__ import annotations

import contextlib
import contextvars
import io
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

_buffer: contextvars.ContextVar[_Lines | None] = contextvars.ContextVar("isr_output", default=None)


class _Lines:
    """Printed text cut into lines; each complete line goes to `emit` as soon as it ends."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.partial = ""

    def write(self, text: str) -> None:
        *complete, self.partial = (self.partial + text).split("\n")
        for line in complete:
            self.emit(line)

    def close(self) -> None:
        if self.partial:
            self.emit(self.partial)
            self.partial = ""


class _Tee(io.TextIOBase):
    """Stands in for sys.stdout/stderr: writes go to the current invocation's buffer."""

    def __init__(self, real: TextIO) -> None:
        self.real = real

    def write(self, text: str) -> int:
        lines = _buffer.get()
        if lines is None:
            return self.real.write(text)
        lines.write(text)
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def install() -> None:
    if not isinstance(sys.stdout, _Tee):
        sys.stdout = _Tee(sys.stdout)
        sys.stderr = _Tee(sys.stderr)


@contextlib.contextmanager
def captured(emit: Callable[[str], None]) -> Iterator[None]:
    """Send each line printed by the code run inside to `emit`, as it is printed."""
    lines = _Lines(emit)
    token = _buffer.set(lines)
    try:
        yield
    finally:
        _buffer.reset(token)
        lines.close()
