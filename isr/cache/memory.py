"""The in-process LRU in front of the backend, bounded in bytes, and the hot-path index.

The LRU is a clock (second chance): a HIT only marks its record used, and eviction moves
a record used since it last came round to the back instead of evicting it. Moving the
record to the back on every HIT, as a strict LRU does, touched three cold list nodes
per HIT: over 20,000 pages in memory, uniform HITs were about 6 % slower with it.

`hot` maps a raw request path (as the client sent it, query stripped) straight to the
record it names, so a fresh HIT is one dict lookup; a data URL names its JSON variant,
any other path its HTML (see the handler). The byte bound counts
everything kept per record: its variants with their prebuilt headers (`Record.size`),
its hot-path aliases and its tag-index entries, so the process's memory follows it.
Once it is full, a record read from the backend is kept only if it was read more often
lately than the record it would evict was used (`admits`), so pages asked for once or
seldom do not push out the pages in use, and a uniform spread of requests over more
pages than fit does not churn memory for nothing.

It also holds where the disk cache spilled the responses it read of pages it does not keep
(spill.py), about SPILL_ENTRY bytes each, counted in the bound: at most half of it, the
first spilled forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from isr.cache.compression import ALL_CODINGS
from isr.cache.layout import VARIANTS
from isr.cache.record import Record
from isr.cache.spill import ResponseKey
from isr.constants import USE_STAMP_EVERY_S

ALIASES_PER_PATH = 8  # raw spellings of one path (HTML, JSON, percent-encodings) the hot path knows
ALIAS_OVERHEAD = 250  # bytes of one hot-path entry beyond its key (dict slot, str header, its path's set of them)
TAG_OVERHEAD = 120  # bytes of one (tag, path) entry of the tag index
SEEN_KEPT = 8192  # paths whose reads from the backend are counted (about 1 MB, part of the fixed overhead)
SAMPLE_PER_RECORD = 10  # uses and reads counted per record held between two halvings (TinyLFU's sample)
# A page is admitted once read at least this many times more than the page it would evict
# was used: admitting costs a read of its whole record, its decoding and an eviction, where
# serving it unkept reads one response, mostly back from its spill. Under uniform traffic
# over 20,000 pages, with 1,200 held, the least recently used page has no uses left: a
# margin of 1 admitted a page on a fifth of the requests, 3 on one in thirty, for nothing
# (4 gave a tenth more requests a second than 3, uniform and Zipf alike).
ADMIT_MARGIN = 4
SPILL_ENTRY = 144  # bytes of one spilled response's entry, at most: its key's hash, one int (location, generation hash, stamp period), a dict slot
_EPOCH_BITS = 16  # an entry carries the USE_STAMP_EVERY_S period it was last stamped in...
_GENERATION_BITS = 64  # ...and a hash of the generation its response is of


class MemoryCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hot: dict[str, Record] = {}
        self.touched: set[str] = set()  # paths served since the disk LRU last heard of them
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._raw_keys: dict[str, set[str]] = {}  # path -> the raw paths that name it
        self._tags: dict[str, set[str]] = {}  # tag -> paths held that carry it
        self._seen: dict[str, int] = {}  # path -> reads from the backend while memory was full, see admits()
        self._age = 0  # how many times the counts of reads and uses were halved
        self._counted = 0  # uses and reads since the last halving
        self._sample = SEEN_KEPT  # ... and how many make the next one
        self._spilled: dict[int, int] = {}  # hash of (path, variant, coding) -> location, generation hash, stamp period
        self._due_since = self._due = 0.0  # see _touch_due

    def __len__(self) -> int:
        return len(self._records)

    def get(self, path: str) -> Record | None:
        """The record held for a path, counted as used (see admits)."""
        record = self._records.get(path)
        if record is not None:
            record.referenced = True
            record.uses += 1
            self._count()
        return record

    def peek(self, path: str) -> Record | None:
        """The record held for a path, without counting it as used."""
        return self._records.get(path)

    def touch(self, record: Record, now: float) -> None:
        """Served now: used here, and (every USE_STAMP_EVERY_S at most) in the backend."""
        record.referenced = True
        record.uses += 1
        self._counted += 1  # _count(), inline on the HIT path
        if self._counted >= self._sample:
            self._halve()
        if now >= record.touch_due:
            record.touch_due = self._touch_due(now)
            self.touched.add(record.path)

    def _touch_due(self, now: float) -> float:
        """USE_STAMP_EVERY_S from now, as one float object for every record touched within the
        same second: a HIT compares with it, and a few hundred shared floats stay in the CPU's
        caches where one per record would cost a cache miss on a page not served lately."""
        if now >= self._due_since + 1.0:
            self._due_since = now
            self._due = now + USE_STAMP_EVERY_S
        return self._due

    def put(self, record: Record, newer_only: bool = True) -> None:
        """Store a record; by default not over an equal or newer generation."""
        old = self._records.get(record.path)
        if old is not None:
            if old.generation == record.generation:
                old.stale_at = min(old.stale_at, record.stale_at)  # learn of an on-demand expiry
                return
            if newer_only and old.generation > record.generation:
                return
            self._forget(old)
            record.uses, record.aged = old.uses, old.aged  # a new generation of a page in use is in use
        else:
            self._uses(record)  # counted from now on, like the records held
        self._records[record.path] = record
        self._records.move_to_end(record.path)
        # The backend stamped its use when it was written, or when it was read (the disk's read
        # renews a stamp over USE_STAMP_EVERY_S old): its first HITs need not tell it again.
        record.touch_due = self._touch_due(time.time())
        self.bytes += record.size
        self._index_tags(record)
        for raw in self._raw_keys.get(record.path, ()):
            self.hot[raw] = record
        self._evict(keep=record.path)

    def admits(self, record: Record) -> bool:
        """Whether to keep a record read from the backend: always while it fits; once memory
        is full, only if it was read more often than the least recently used record (the one
        it would evict) was used since it came in (TinyLFU's admission test). Both counts
        are halved every SAMPLE_PER_RECORD uses and reads per record held, so they measure
        recent popularity: a page that was hot once and is idle now makes way in time.

        A page read once (a crawler's, the long tail) is served without evicting a page in
        use; a page that turns popular gets in on its next reads."""
        if self.bytes + record.size <= self.max_bytes or record.path in self._records:
            return True
        reads = self._seen.get(record.path, 0) + 1
        if self._outranks(reads):
            self._seen.pop(record.path, None)
            record.uses, record.aged = reads - 1, self._age  # this read counts when it is served (get)
            return True
        self.refused(record.path)
        return False

    def wants(self, path: str) -> bool:
        """Whether `admits` would keep the record of a path, asked before reading it (a record
        of the average size held stands for it): if not, it is read as a response only."""
        held = len(self._records)
        if not held or self.bytes + (self.bytes - self._spill_bytes) // held <= self.max_bytes or path in self._records:
            return True
        return self._outranks(self._seen.get(path, 0) + 1)

    def refused(self, path: str) -> None:
        """A read of a path served but not kept: counted for its admission later."""
        self._seen[path] = self._seen.get(path, 0) + 1
        self._count()
        if len(self._seen) > SEEN_KEPT:
            self._halve()

    def _outranks(self, reads: int) -> bool:
        """Read more often lately than the record at the head of the clock (the next one
        eviction comes to) was used, by ADMIT_MARGIN."""
        victim = next(iter(self._records.values()), None)
        return victim is None or reads >= self._uses(victim) + ADMIT_MARGIN

    def _count(self) -> None:
        self._counted += 1
        if self._counted >= self._sample:
            self._halve()

    def _uses(self, record: Record) -> int:
        """A record's uses, halved as often as the counts were since it was last asked."""
        record.uses >>= min(self._age - record.aged, 63)
        record.aged = self._age
        return record.uses

    def _halve(self) -> None:
        self._age += 1
        self._counted = 0
        self._sample = max(SAMPLE_PER_RECORD * len(self._records), SEEN_KEPT)
        self._seen = {path: reads // 2 for path, reads in self._seen.items() if reads > 1}

    def alias(self, raw: str, record: Record) -> None:
        """Let the hot path find this record under this raw request path."""
        if self._records.get(record.path) is not record:
            return  # evicted or replaced meanwhile
        keys = self._raw_keys.setdefault(record.path, set())
        if raw in keys or len(keys) >= ALIASES_PER_PATH:
            return  # odd spellings of a path beyond a few take the slow path, not memory
        keys.add(raw)
        self.bytes += ALIAS_OVERHEAD + len(raw)
        self.hot[raw] = record
        self._evict()

    def drop(self, path: str) -> None:
        record = self._records.pop(path, None)
        if record is not None:
            self._forget(record)
        for raw in self._raw_keys.pop(path, ()):
            self.hot.pop(raw, None)
            self.bytes -= ALIAS_OVERHEAD + len(raw)

    def spill(self, key: ResponseKey, location: int, generation: str) -> None:
        """Remember where a response of a page not kept here was spilled (spill.py)."""
        hashed = hash(key)
        if hashed not in self._spilled:
            self.bytes += SPILL_ENTRY
        self._spilled[hashed] = (location << _GENERATION_BITS | _fingerprint(generation)) << _EPOCH_BITS | _stamp_period(time.time())
        while self._spill_bytes > self.max_bytes // 2:
            del self._spilled[next(iter(self._spilled))]
            self.bytes -= SPILL_ENTRY
        self._evict()

    def spilled(self, key: ResponseKey) -> int | None:
        """Where a response was spilled, counted as a use for the disk's LRU (every
        USE_STAMP_EVERY_S at most), or None."""
        hashed = hash(key)
        entry = self._spilled.get(hashed)
        if entry is None:
            return None
        period = _stamp_period(time.time())
        if entry & _EPOCH_MASK != period:
            self._spilled[hashed] = entry >> _EPOCH_BITS << _EPOCH_BITS | period
            self.touched.add(key[0])
        return entry >> (_EPOCH_BITS + _GENERATION_BITS)

    def unspill(self, path: str, current: str | None = None) -> None:
        """Forget a page's spilled responses of generations other than `current` (all of
        them if None): a newer generation exists."""
        keep = None if current is None else _fingerprint(current)
        for variant in VARIANTS:
            for coding in ALL_CODINGS:
                hashed = hash((path, variant, coding))
                entry = self._spilled.get(hashed)
                if entry is not None and (entry >> _EPOCH_BITS) & _GENERATION_MASK != keep:
                    del self._spilled[hashed]
                    self.bytes -= SPILL_ENTRY

    @property
    def _spill_bytes(self) -> int:
        return len(self._spilled) * SPILL_ENTRY

    def with_tag(self, tag: str) -> list[Record]:
        """The records held that carry a tag."""
        return [self._records[path] for path in self._tags.get(tag, ())]

    def clear(self) -> None:
        for path in list(self._records):
            self.drop(path)
        self.bytes -= self._spill_bytes
        self._spilled.clear()

    def _forget(self, record: Record) -> None:
        """Uncount a record that leaves (or is replaced in) memory, and its tag entries."""
        self.bytes -= record.size
        for tag in record.tags:
            paths = self._tags.get(tag)
            if paths is not None:
                paths.discard(record.path)
                self.bytes -= TAG_OVERHEAD
                if not paths:
                    del self._tags[tag]

    def _index_tags(self, record: Record) -> None:
        for tag in record.tags:
            self._tags.setdefault(tag, set()).add(record.path)
            self.bytes += TAG_OVERHEAD

    def _evict(self, keep: str | None = None) -> None:
        """Evict down to the bound, never the record just put (`keep`): it is about to be served."""
        while self.bytes > self.max_bytes and len(self._records) > 1:
            path, oldest = next(iter(self._records.items()))
            if oldest.referenced or path == keep:  # used since the clock last came round: a second chance
                oldest.referenced = False
                self._records.move_to_end(path)
            else:
                self.drop(path)


_EPOCH_MASK = (1 << _EPOCH_BITS) - 1
_GENERATION_MASK = (1 << _GENERATION_BITS) - 1


def _fingerprint(generation: str) -> int:
    return hash(generation) & _GENERATION_MASK


def _stamp_period(now: float) -> int:
    return int(now // USE_STAMP_EVERY_S) & _EPOCH_MASK
