"""Per-invocation capture of what user code prints to stdout and stderr."""

from __future__ import annotations

import contextlib
import contextvars
import io
import sys
from collections.abc import Iterator
from typing import Any, TextIO

_buffer: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("isr_output", default=None)


class _Tee(io.TextIOBase):
    """Stands in for sys.stdout/stderr: writes go to the current invocation's buffer."""

    def __init__(self, real: TextIO) -> None:
        self.real = real

    def write(self, text: str) -> int:
        buffer = _buffer.get()
        if buffer is None:
            return self.real.write(text)
        buffer.append(text)
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
def captured() -> Iterator[list[str]]:
    """Collect printed lines of the code run inside; yields the list it fills."""
    lines: list[str] = []
    chunks: list[str] = []
    token = _buffer.set(chunks)
    try:
        yield lines
    finally:
        _buffer.reset(token)
        lines.extend("".join(chunks).splitlines())
