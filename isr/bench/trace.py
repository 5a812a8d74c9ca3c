"""Reading an access log to replay: nginx/Apache combined format or JSON lines.

A line that is neither is counted and skipped (the first few are quoted back to the user),
so one corrupt line does not spoil a day of log. Times start at 0 at the first request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from isr.errors import IsrError

# host ident user [10/Oct/2000:13:55:36 -0700] "GET /path HTTP/1.1" status size ...
COMBINED = re.compile(r'^\S+ \S+ \S+ \[([^\]]+)\] "([A-Z]+) (\S+)(?: [^"]*)?"')
TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"
REPLAYED = frozenset({"GET", "HEAD"})  # other methods do not read the cache
QUOTED_BAD = 3  # bad lines quoted in the messages


class TraceError(IsrError):
    """The trace file cannot be read, or has no request in it."""


@dataclass
class Trace:
    arrivals: list[tuple[float, str]]  # (seconds since the first request, path), in time order
    bad: int = 0  # lines neither format could read
    ignored: int = 0  # well-formed lines of methods other than GET and HEAD
    messages: list[str] = field(default_factory=list)

    @property
    def span_s(self) -> float:
        return self.arrivals[-1][0] if self.arrivals else 0.0


def read_trace(path: Path) -> Trace:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror or exc}") from None
    trace = parse_lines(text.splitlines(), str(path))
    if not trace.arrivals:
        raise TraceError(f"no GET or HEAD request in trace {path} ({trace.bad} bad lines)")
    return trace


def parse_lines(lines: list[str], name: str = "trace") -> Trace:
    stamped: list[tuple[float, str]] = []
    trace = Trace([])
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = parse_line(line)
        except ValueError as exc:
            trace.bad += 1
            if trace.bad <= QUOTED_BAD:
                trace.messages.append(f"{name}:{number}: skipped: {exc}")
            continue
        if entry is None:
            trace.ignored += 1
        else:
            stamped.append(entry)
    if trace.bad > QUOTED_BAD:
        trace.messages.append(f"{name}: {trace.bad} bad lines skipped in all")
    stamped.sort(key=lambda entry: entry[0])  # stable: equal times keep the log's order
    start = stamped[0][0] if stamped else 0.0
    trace.arrivals = [(t - start, p) for t, p in stamped]
    return trace


def parse_line(line: str) -> tuple[float, str] | None:
    """(absolute seconds, path); None for a method that is not replayed; ValueError if bad."""
    return _json_line(line) if line.lstrip().startswith("{") else _combined_line(line)


def _json_line(line: str) -> tuple[float, str]:
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ValueError("not valid JSON") from None
    t, path = entry.get("t") if isinstance(entry, dict) else None, entry.get("path") if isinstance(entry, dict) else None
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        raise ValueError('no number "t" (seconds)')
    return float(t), _checked_path(path)


def _combined_line(line: str) -> tuple[float, str] | None:
    match = COMBINED.match(line)
    if match is None:
        raise ValueError("neither a combined-format log line nor JSON")
    stamp, method, target = match.groups()
    try:
        t = datetime.strptime(stamp, TIME_FORMAT).timestamp()
    except ValueError:
        raise ValueError(f"bad time [{stamp}]") from None
    return (t, _checked_path(target)) if method in REPLAYED else None


def _checked_path(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path must start with /: {str(path)[:80]!r}")
    return path
