"""Per-invocation capture of what user code prints to stdout and stderr.

What an invocation prints is kept up to MAX_LINES lines and MAX_BYTES in all, a line up
to MAX_LINE bytes, as on Vercel; the rest is dropped, with one marker line saying so.
The limits hold in the worker, as the text is written, so neither the worker nor the
server ever holds more than that, however much a function prints.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

MAX_LINES = 256
MAX_BYTES = 2**20
MAX_LINE = 256 * 2**10
MARKER = "isr: output over the limit of 256 lines, 1 MB per invocation or 256 KB per line; the rest was dropped"

_buffer: contextvars.ContextVar[_Lines | None] = contextvars.ContextVar("isr_output", default=None)


class _Lines:
    """Printed text cut into lines; each kept line goes to `emit` as soon as it ends.

    The last line the budget allows is held back until it is known whether more
    follows: if it does, the marker takes its place, so at most MAX_LINES are kept.
    """

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.partial: list[str] = []  # the current line so far, at most MAX_LINE characters
        self.partial_size = 0
        self.cut = False  # the current line went over MAX_LINE
        self.lines = 0
        self.bytes = 0
        self.held: str | None = None
        self.full = False  # the marker was sent: everything from now on is dropped

    def write(self, text: str) -> None:
        start = 0
        while not self.full:
            end = text.find("\n", start)
            if end < 0:
                self._extend(text, start, len(text))
                return
            self._extend(text, start, end)
            self._end_line()
            start = end + 1

    def close(self) -> None:
        if self.full:
            return
        if self.partial or self.cut:
            self._end_line()
        if self.held is not None:
            self.emit(self.held)
            self.held = None

    def _extend(self, text: str, start: int, end: int) -> None:
        """Add text[start:end] to the current line, never beyond MAX_LINE characters."""
        stop = min(end, start + MAX_LINE - self.partial_size)
        self.cut = self.cut or stop < end
        if stop > start:
            self.partial.append(text[start:stop])
            self.partial_size += stop - start

    def _end_line(self) -> None:
        line, cut = "".join(self.partial), self.cut
        self.partial, self.partial_size, self.cut = [], 0, False
        encoded = line.encode("utf-8", "replace")
        if len(encoded) > MAX_LINE:
            line, cut = encoded[:MAX_LINE].decode("utf-8", "ignore"), True
        size = min(len(encoded), MAX_LINE)
        if self.lines >= MAX_LINES or self.bytes + size > MAX_BYTES:
            self._drop()  # also the held line: the marker takes its place
            return
        self.lines += 1
        self.bytes += size
        if cut:  # kept up to MAX_LINE; the rest of it is dropped
            self.emit(line)
            self._drop()
        elif self.lines == MAX_LINES:
            self.held = line
        else:
            self.emit(line)

    def _drop(self) -> None:
        self.held = None
        self.full = True
        self.emit(MARKER)


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


def note(line: str) -> None:
    """A line of the runtime's own in the current invocation's output (e.g. a dropped header)."""
    lines = _buffer.get()
    if lines is not None:
        lines.write(line + "\n")


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
