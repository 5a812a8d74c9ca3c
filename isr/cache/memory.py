"""The in-process LRU in front of the backend, bounded in bytes, and the hot-path index.

`hot` maps a raw request path (as the client sent it, query stripped) straight to the
record and variant it names, so a fresh HIT is one dict lookup.
"""

from __future__ import annotations

from collections import OrderedDict

from isr.cache.record import Record, Variant

ALIASES_PER_PATH = 8  # raw spellings of one path (HTML, JSON, percent-encodings) the hot path knows


class MemoryCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hot: dict[str, tuple[Record, Variant]] = {}
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._raw_keys: dict[str, dict[str, bool]] = {}  # path -> raw paths -> is JSON

    def get(self, path: str) -> Record | None:
        record = self._records.get(path)
        if record is not None:
            self._records.move_to_end(path)
        return record

    def touch(self, path: str) -> None:
        self._records.move_to_end(path)

    def put(self, record: Record, newer_only: bool = True) -> None:
        """Store a record; by default not over an equal or newer generation."""
        old = self._records.get(record.path)
        if old is not None:
            if old.generation == record.generation:
                old.stale_at = min(old.stale_at, record.stale_at)  # learn of an on-demand expiry
                return
            if newer_only and old.generation > record.generation:
                return
            self.bytes -= old.size
        self._records[record.path] = record
        self._records.move_to_end(record.path)
        self.bytes += record.size
        for raw, is_json in self._raw_keys.get(record.path, {}).items():
            self.hot[raw] = (record, record.data if is_json else record.html)
        self._evict()

    def alias(self, raw: str, record: Record, is_json: bool) -> None:
        """Let the hot path find this record under this raw request path."""
        keys = self._raw_keys.setdefault(record.path, {})
        if self._records.get(record.path) is not record or (raw not in keys and len(keys) >= ALIASES_PER_PATH):
            return  # odd spellings of a path beyond a few take the slow path, not memory
        keys[raw] = is_json
        self.hot[raw] = (record, record.data if is_json else record.html)

    def drop(self, path: str) -> None:
        record = self._records.pop(path, None)
        if record is not None:
            self.bytes -= record.size
        for raw in self._raw_keys.pop(path, {}):
            self.hot.pop(raw, None)

    def paths(self) -> list[str]:
        return list(self._records)

    def _evict(self) -> None:
        while self.bytes > self.max_bytes and len(self._records) > 1:
            self.drop(next(iter(self._records)))
