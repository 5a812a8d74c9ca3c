"""Log records on disk, per site: the last 2,000 errors, and every record of the last hour.

Two diskcache Deques (SQLite): appends trim the oldest inside one transaction, so the
newest records are never the ones dropped, and both survive restarts. Only a
background flush writes here, never a request.
"""

from __future__ import annotations

import time
from pathlib import Path

import diskcache

from isr.logs.record import Filter, LogRecord

ERRORS_KEPT = 2000
RECENT_KEPT = 20_000  # records of the last hour, at most
RECENT_SECONDS = 3600


def log_folder(site_root: Path) -> Path:
    return site_root / ".isr" / "logs"


class LogStore:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.errors = diskcache.Deque(directory=str(folder / "errors"), maxlen=ERRORS_KEPT)
        self.recent = diskcache.Deque(directory=str(folder / "recent"), maxlen=RECENT_KEPT)

    def append(self, records: list[LogRecord]) -> None:
        """Blocking: call it off the event loop."""
        with self.recent.transact():
            self.recent.extend(r.as_json() for r in records)
            self._expire()
        errors = [r.as_json() for r in records if r.is_error]
        if errors:
            with self.errors.transact():
                self.errors.extend(errors)

    def _expire(self) -> None:
        horizon = time.time() - RECENT_SECONDS
        while len(self.recent) and self.recent[0]["time"] < horizon:
            self.recent.popleft()

    def read(self, keep: Filter) -> list[LogRecord]:
        """Matching records, oldest first: the error store for errors, else the last hour
        plus the errors from before it."""
        if keep.errors:
            return [r for r in map(LogRecord.from_json, self.errors) if keep(r)]
        horizon = time.time() - RECENT_SECONDS
        old_errors = [d for d in self.errors if d["time"] < horizon]
        recent = [d for d in self.recent if d["time"] >= horizon]
        return [r for r in map(LogRecord.from_json, old_errors + recent) if keep(r)]

    def close(self) -> None:
        self.errors.cache.close()
        self.recent.cache.close()
