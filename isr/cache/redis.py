"""The shared backend: one Redis (or Redis Cluster) for any number of instances.

Every key of a build sits under `<prefix>:{<build>}:`, one hash slot, so a Lua script
can fence a write, update the page's tag sets and log the change atomically, also on a
cluster. A record is one hash (the record bytes plus its generation, start time and
tags), so Redis's own `maxmemory` eviction takes a record whole; records alone have a
TTL, so that under `volatile-lru` Redis evicts nothing else. Each write bumps the
build's change counter and appends to a capped stream keyed by that counter: a follower
lists exactly what changed since its last sync, and learns of a gap (trimmed, evicted,
Redis restarted empty) instead of missing it. A pub/sub message per write only wakes
followers and waiting regenerations at once; losing one costs latency, never a change.

Revalidating a tag is one short script (the mark, the log entry, the message) whatever
the number of pages carrying it; the paths it made stale are then listed from the tag's
set by SSCAN batches, a script call each (bounded like every call, Redis serving other
clients in between), which also removes members whose record Redis evicted or expired.

The index sets (the build's paths, a set of paths per tag, the list of tags) carry no TTL,
so that `volatile-lru` never evicts them; they shrink with the records instead. A write
that adds n members to an index set also looks at SWEEP_STEP * n of its members from where
the previous write stopped (SSCAN cursors in the build's `sweep` hash) and removes those
whose record is gone, in the same script as the check; the list of tags is walked the same
way, and a tag whose pages are all gone leaves it. A set is thus walked whole while it grows
by a quarter, and the members it names that are gone stay a fraction of it whatever the
rate of new paths: a crawler of 30,000 junk paths through a 4 MB Redis leaves ~1,150
records and index sets of ~1,350 members (unswept, the sets filled Redis until it refused
writes). The cost stays O(tags of the page) per write. Tag marks (a field per tag ever
revalidated) are not swept: they come from revalidation calls, not from requests.

Every call is bounded (0.5 s by default). A call that fails marks Redis down: the
outage is logged once and counted, and one call a second probes Redis (the next probe
is set due before it waits) while all others fail at once; the first call that succeeds
again makes the next `changes()` answer None (the store drops its copies: invalidations
may have been missed meanwhile). The store turns a failure into a miss, a local lease
and a record kept in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    ClusterError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from isr.cache import layout
from isr.cache.backend import Change, Health, Stored
from isr.cache.layout import Served
from isr.cache.spill import SpillFiles
from isr.constants import REDIS_SCHEMES
from isr.errors import CacheError, CacheUnavailable

T = TypeVar("T")
log = logging.getLogger("isr")

OUR_OPTIONS = {"timeout", "prefix", "cluster"}
REDIS_OPTIONS = {  # passed to redis-py
    "db", "socket_keepalive", "max_connections", "health_check_interval", "protocol",
    "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname",  # rediss://: none/optional/required, a CA file, a client certificate
}  # fmt: skip
DEFAULT_TIMEOUT_S = 0.5  # every Redis call, connecting included; `?timeout=` in the URL overrides it
DEFAULT_PREFIX = "isr"  # `?prefix=` in the URL: several sites (or tests) on one Redis
PROBE_EVERY_S = 1.0  # while Redis is down, one call a second tries it; the others fail at once
WAKE_S = 0.25  # a waiter looks again this often even if no message arrives (lost pub/sub)
LOG_KEPT = 10_000  # changes kept per build: a follower further behind drops its copies
SERVER_SEEN_S = 30.0  # a server that announced itself this recently is alive
DROP_BATCH = 500  # keys deleted per script call when a build is dropped (Redis stays responsive)
TOUCH_BATCH = 500
SCAN_BATCH = 1000  # members of a tag set per call when a tag is revalidated
SWEEP_STEP = 4  # index members a write looks at per index set it adds to (removing those whose record is gone)
# Records alone carry a TTL (renewed by every write and use), so that `maxmemory-policy
# volatile-lru` evicts records only: never tag sets, tag marks, static paths or the log.
RECORD_TTL_S = 30 * 86400

# KEYS[1]: the build's counter (routes the script to the build's slot); ARGV[1]: key prefix
# of the build, ARGV[2]: channel, ARGV[3]: build id. Every other key is in the same slot.
_BUMP = """
local function bump(prefix, kind, key, value)
  local seq = redis.call('INCR', prefix .. 'seq')
  local last = redis.call('XREVRANGE', prefix .. 'log', '+', '-', 'COUNT', 1)[1]
  if last then
    local n = tonumber(string.match(last[1], '^(%d+)'))
    if n >= seq then seq = n + 1; redis.call('SET', prefix .. 'seq', seq) end  -- the counter was evicted
  end
  redis.call('XADD', prefix .. 'log', 'MAXLEN', '~', LOG_KEPT, seq .. '-0', 'k', kind, 'key', key, 'v', value)
end
""".replace("LOG_KEPT", str(LOG_KEPT))

# Lua: the start time of each member's record (false where the record is gone: evicted or
# expired), removing those members from the index set `set` in the same step, so that no write
# can come in between the check and the removal.
_CHECK = """
local function check(prefix, set, members)
  local out = {}
  for i, path in ipairs(members) do
    local started = redis.call('HGET', prefix .. 'p:' .. path, 'start')
    if not started then redis.call('SREM', set, path) end
    out[i] = started
  end
  return out
end
"""

# Lua: a set that gains n members in a write is also looked at, SWEEP_STEP * n members from
# where the last write stopped (an SSCAN cursor kept in the build's `sweep` hash), and its
# members whose record is gone are removed. The list of tags is walked the same way, a tag
# set of up to SWEEP_STEP members looked at whole (a tag only pages now gone carried leaves
# the list; larger sets are swept by the writes that add to them). See the module docstring.
# It asks EXISTS, not HGET: EXISTS leaves a record's LRU idle time alone, so sweeping never
# makes junk look recently used.
_SWEEP = """
local function gone(prefix, set, members)
  local removed = 0
  for _, path in ipairs(members) do
    if redis.call('EXISTS', prefix .. 'p:' .. path) == 0 then removed = removed + redis.call('SREM', set, path) end
  end
  return removed
end

local function sweep(prefix, set, field, n)
  local state = prefix .. 'sweep'
  local found = redis.call('SSCAN', set, redis.call('HGET', state, field) or '0', 'COUNT', n)
  gone(prefix, set, found[2])
  if found[1] == '0' then redis.call('HDEL', state, field) else redis.call('HSET', state, field, found[1]) end
end

local function sweep_tags(prefix, n)
  local state, list = prefix .. 'sweep', prefix .. 'tags'
  local found = redis.call('SSCAN', list, redis.call('HGET', state, 'tags') or '0', 'COUNT', n)
  for _, tag in ipairs(found[2]) do
    local set = prefix .. 't:' .. tag
    local size = redis.call('SCARD', set)
    if size <= SWEEP_STEP and gone(prefix, set, redis.call('SMEMBERS', set)) == size then
      redis.call('SREM', list, tag)
      redis.call('HDEL', state, 't:' .. tag)
    end
  end
  if found[1] == '0' then redis.call('HDEL', state, 'tags') else redis.call('HSET', state, 'tags', found[1]) end
end
""".replace("SWEEP_STEP", str(SWEEP_STEP))

_PUT = _BUMP + _SWEEP + """
local prefix, out, i, written = ARGV[1], {}, 5, false
local added = {paths = 0, tags = 0, sets = {}}  -- new members of the index sets, swept in proportion
for r = 1, tonumber(ARGV[4]) do
  local path, gen, started, ntags = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local tags, new = {}, {}
  for t = 1, ntags do tags[t] = ARGV[i + 3 + t]; new[tags[t]] = true end
  local raw = ARGV[i + 4 + ntags]
  i = i + 5 + ntags
  local key = prefix .. 'p:' .. path
  local old = redis.call('HMGET', key, 'start', 'tags')
  if old[1] and tonumber(old[1]) > tonumber(started) then
    out[r] = 0  -- fenced: a generation that started later is stored
  else
    if old[2] then
      for _, t in ipairs(cjson.decode(old[2])) do
        if not new[t] then redis.call('SREM', prefix .. 't:' .. t, path) end
      end
    end
    for _, t in ipairs(tags) do
      added.sets[t] = (added.sets[t] or 0) + redis.call('SADD', prefix .. 't:' .. t, path)
      added.tags = added.tags + redis.call('SADD', prefix .. 'tags', t)
    end
    redis.call('HSET', key, 'raw', raw, 'gen', gen, 'start', started, 'tags', ntags > 0 and cjson.encode(tags) or '[]')
    redis.call('EXPIRE', key, RECORD_TTL)
    added.paths = added.paths + redis.call('SADD', prefix .. 'paths', path)
    bump(prefix, 'path', path, gen)
    out[r] = 1
    written = true
  end
end
if added.paths > 0 then sweep(prefix, prefix .. 'paths', 'paths', SWEEP_STEP * added.paths) end
for t, n in pairs(added.sets) do
  if n > 0 then sweep(prefix, prefix .. 't:' .. t, 't:' .. t, SWEEP_STEP * n) end
end
if added.tags > 0 then sweep_tags(prefix, SWEEP_STEP * added.tags) end
if written then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return out
""".replace("RECORD_TTL", str(RECORD_TTL_S)).replace("SWEEP_STEP", str(SWEEP_STEP))

# Only the mark (one call whatever the tag's size): the paths it makes stale are listed after, by batches.
_MARK_TAG = _BUMP + """
local prefix, tag, at = ARGV[1], ARGV[4], ARGV[5]
redis.call('HSET', prefix .. 'marks', tag, at)
bump(prefix, 'tag', tag, at)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 0
"""

# KEYS[1]: a tag set; ARGV[4]: the tag, ARGV[5]: a mark time, ARGV[6]: an SSCAN cursor, ARGV[7]:
# its COUNT. The next cursor and the batch's paths whose generation started at or before the
# mark, as one JSON array (a reply of 1,000 strings costs redis-py's parser 10 ms, one string
# nothing); a tag set left empty leaves the build's list of tags.
_STALE = _CHECK + """
local prefix, at = ARGV[1], tonumber(ARGV[5])
local found = redis.call('SSCAN', KEYS[1], ARGV[6], 'COUNT', tonumber(ARGV[7]))
local starts, stale = check(prefix, KEYS[1], found[2]), {}
for i, path in ipairs(found[2]) do
  if starts[i] and tonumber(starts[i]) <= at then stale[#stale + 1] = path end
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', prefix .. 'tags', ARGV[4]) end
return {found[1], #stale > 0 and cjson.encode(stale) or '[]'}
"""

_CHANGES = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local since = tonumber(ARGV[4])
if since < 0 or seq <= since then return {seq, {}} end
return {seq, redis.call('XRANGE', ARGV[1] .. 'log', (since + 1) .. '-0', seq .. '-0')}
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])  -- waiters take the lease over at once
end
return 0
"""

# A use of records served from memory: for the LRU, and the records' TTL starts again.
_TOUCH = """
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[1]) end
return 0
"""

# Deletes the keys of up to ARGV[4] members of one of the build's key sets (ARGV[5]: paths or tags).
_DROP = """
local prefix, members = ARGV[1], redis.call('SPOP', KEYS[1], tonumber(ARGV[4]))
local deleted = 0
for _, m in ipairs(members) do
  if ARGV[5] == 'paths' then
    deleted = deleted + redis.call('UNLINK', prefix .. 'p:' .. m)
    redis.call('UNLINK', prefix .. 'l:' .. m)
  else
    redis.call('UNLINK', prefix .. 't:' .. m)
  end
end
return {#members, deleted}
"""

# Redis down, slow, out of memory (noeviction), failing over: an outage, not a bug of ours
_UNAVAILABLE = (
    RedisConnectionError, RedisTimeoutError, ClusterError, OutOfMemoryError, ReadOnlyError, TryAgainError, OSError, TimeoutError,
)


class RedisBackend:
    """The Backend protocol on Redis; `connect()` makes one from a URL."""

    def __init__(self, client: Any, url: str, prefix: str = DEFAULT_PREFIX, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.client = client  # redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster
        self.url = url  # without its password: for messages
        self.prefix = prefix
        self.timeout = timeout
        self.health = Health()
        self.spill: SpillFiles | None = None  # responses read come over the network: nothing to read back locally
        self.channel = f"{prefix}:changes"
        self._scripts = {name: client.register_script(source) for name, source in _SCRIPTS.items()}
        self._down_since: float | None = None
        self._probe_at = 0.0
        self._resync = False  # Redis came back: the next changes() makes followers drop their copies
        self._builds: set[str] = set()  # registered in the builds set by this process
        self._listener: asyncio.Task[None] | None = None
        self._woken: asyncio.Future[None] | None = None

    def _key(self, build_id: str, name: str = "") -> str:
        return f"{self.prefix}:{{{build_id}}}:{name}"

    # -- bounded calls and the outage state -----------------------------------------------

    async def _call(self, command: Callable[[], Awaitable[T]]) -> T:
        """One Redis call within the timeout; CacheUnavailable when Redis does not answer."""
        if self._down_since is not None:
            now = time.monotonic()
            if now < self._probe_at:
                raise CacheUnavailable(f"redis {self.url} is unreachable")
            self._probe_at = now + PROBE_EVERY_S  # this call probes; the others fail at once meanwhile
        try:
            result = await asyncio.wait_for(command(), self.timeout)
        except _UNAVAILABLE as exc:
            self._failed(exc)
            raise CacheUnavailable(f"redis {self.url}: {_reason(exc)}") from None
        except RedisError as exc:
            raise CacheError(f"redis {self.url}: {_reason(exc)}") from None
        if self._down_since is not None:
            self._recovered()
        return result

    def _failed(self, exc: BaseException) -> None:
        self._probe_at = time.monotonic() + PROBE_EVERY_S
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.health.available = False
            self.health.outages += 1
            log.warning("cache: redis %s unavailable (%s): serving what memory holds, rendering misses locally", self.url, _reason(exc))

    def _recovered(self) -> None:
        assert self._down_since is not None
        log.warning("cache: redis %s is back after %.1f s: dropping the pages held in memory and resynchronising", self.url, time.monotonic() - self._down_since)
        self._down_since = None
        self.health.available = True
        self._resync = True
        self._builds.clear()  # it may have restarted empty
        self._wake()

    async def _register(self, build_id: str) -> None:
        """Name the build in the builds set once per process (drop_builds finds its keys from there)."""
        if build_id not in self._builds:
            await self._call(lambda: self.client.sadd(f"{self.prefix}:builds", build_id))
            self._builds.add(build_id)

    def _script(self, name: str, build_id: str, *args: Any, key: str | None = None) -> Callable[[], Awaitable[Any]]:
        prefix = self._key(build_id)
        keys = [key or prefix + "seq"]
        return lambda: self._scripts[name](keys=keys, args=[prefix, self.channel, build_id, *args])

    # -- records ----------------------------------------------------------------------

    async def get(self, build_id: str, path: str) -> bytes | None:
        raw: bytes | None = await self._call(lambda: self.client.hget(self._key(build_id, "p:" + path), "raw"))
        return raw

    async def get_served(self, build_id: str, path: str, variant: str, coding: str) -> Served | None:
        raw = await self.get(build_id, path)
        return None if raw is None else layout.served(raw, variant, coding)

    async def put(self, build_id: str, records: list[Stored]) -> list[bool]:
        if not records:
            return []
        await self._register(build_id)
        args: list[Any] = [len(records)]
        for r in records:
            args += [r.path, r.generation, repr(r.started_at), len(r.tags), *r.tags, r.raw]
        stored = await self._call(self._script("put", build_id, *args))
        return [bool(n) for n in stored]

    async def touch(self, build_id: str, paths: Collection[str]) -> None:
        """Served from memory: a use for Redis's LRU too, and a new TTL (in batches; one slot)."""
        keys = [self._key(build_id, "p:" + path) for path in paths]
        for start in range(0, len(keys), TOUCH_BATCH):
            batch = keys[start : start + TOUCH_BATCH]
            await self._call(lambda batch=batch: self._scripts["touch"](keys=batch, args=[RECORD_TTL_S]))  # type: ignore[misc]

    # -- tags -------------------------------------------------------------------------

    async def mark_tag(self, build_id: str, tag: str, at: float) -> list[str]:
        """The mark is one call; the stale paths are then listed from about SCAN_BATCH members
        of the tag set per call (each call bounded, Redis answering others in between), and
        members whose record is gone are removed from the set on the way."""
        await self._register(build_id)
        await self._call(self._script("mark_tag", build_id, tag, repr(at)))
        key = self._key(build_id, "t:" + tag)
        stale: list[str] = []
        cursor = b"0"
        while True:
            cursor, paths = await self._call(self._script("stale", build_id, tag, repr(at), cursor, SCAN_BATCH, key=key))
            stale += orjson.loads(paths)
            if cursor == b"0":
                return sorted(set(stale))  # SSCAN may return a member twice while the set shrinks

    async def tag_marks(self, build_id: str) -> dict[str, float]:
        marks = await self._call(lambda: self.client.hgetall(self._key(build_id, "marks")))
        return {tag.decode(): float(at) for tag, at in marks.items()}

    # -- other instances' writes --------------------------------------------------------

    async def changes(self, build_id: str, since: int) -> tuple[int, list[Change] | None]:
        self._listen()
        seq, entries = await self._call(self._script("changes", build_id, since))
        seq = int(seq)
        if self._resync:
            self._resync = False
            return seq, None
        if since < 0 or seq == since:
            return seq, []
        if seq < since or len(entries) != seq - since:
            return seq, None  # Redis restarted empty, or the log was trimmed or evicted past `since`
        return seq, [_change(entry) for entry in entries]

    async def changed(self, build_id: str, poll: float) -> None:
        """Return on the next message of any instance's write (or release), at the latest after WAKE_S."""
        self._listen()
        if self._woken is None or self._woken.done():
            self._woken = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._woken), WAKE_S)

    def _wake(self) -> None:
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    def _listen(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.ensure_future(self._subscribe())

    async def _subscribe(self) -> None:
        """Wake waiters on every message; reconnect by itself, waking them too (they may have missed one)."""
        while True:
            pubsub = self.client.pubsub()
            try:
                await asyncio.wait_for(pubsub.subscribe(self.channel), self.timeout)
                self._wake()
                while True:
                    if await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0) is not None:
                        self._wake()
            except _UNAVAILABLE:
                await asyncio.sleep(PROBE_EVERY_S)
            finally:
                await _within(pubsub.aclose(), self.timeout)

    # -- leases -----------------------------------------------------------------------

    async def acquire_lease(self, build_id: str, path: str, ttl: float) -> str | None:
        token = secrets.token_hex(8)
        key = self._key(build_id, "l:" + path)
        taken = await self._call(lambda: self.client.set(key, token, nx=True, px=max(int(ttl * 1000), 1)))
        return token if taken else None

    async def renew_lease(self, build_id: str, path: str, token: str, ttl: float) -> bool:
        key = self._key(build_id, "l:" + path)
        renewed = await self._call(lambda: self._scripts["renew"](keys=[key], args=[token, max(int(ttl * 1000), 1)]))
        return bool(renewed)

    async def release_lease(self, build_id: str, path: str, token: str) -> None:
        key = self._key(build_id, "l:" + path)
        await self._call(lambda: self._scripts["release"](keys=[key], args=[token, self.channel, build_id]))

    # -- static paths, builds, servers --------------------------------------------------

    async def get_static_paths(self, build_id: str, page: str) -> list[str] | None:
        raw = await self._call(lambda: self.client.hget(self._key(build_id, "static"), page))
        return None if raw is None else list(orjson.loads(raw))

    async def put_static_paths(self, build_id: str, page: str, paths: list[str]) -> None:
        await self._register(build_id)
        await self._call(lambda: self.client.hset(self._key(build_id, "static"), page, orjson.dumps(paths)))

    async def announce(self, build_id: str, instance: str) -> None:
        await self._register(build_id)
        seen = orjson.dumps({"build": build_id, "seen": time.time()})
        await self._call(lambda: self.client.hset(f"{self.prefix}:servers", instance, seen))

    async def builds_in_use(self) -> set[str]:
        servers = await self._call(lambda: self.client.hgetall(f"{self.prefix}:servers"))
        cutoff = time.time() - SERVER_SEEN_S
        return {entry["build"] for entry in map(orjson.loads, servers.values()) if entry["seen"] > cutoff}

    async def report(self, server: str, values: dict[str, Any]) -> None:
        entry = orjson.dumps({"seen": time.time(), "counters": values})
        await self._call(lambda: self.client.hset(f"{self.prefix}:reports", server, entry))

    async def reports(self) -> dict[str, dict[str, Any]]:
        entries = await self._call(lambda: self.client.hgetall(f"{self.prefix}:reports"))
        cutoff = time.time() - SERVER_SEEN_S
        live = {name.decode(): orjson.loads(entry) for name, entry in entries.items()}
        gone = [name for name, entry in live.items() if entry["seen"] < cutoff]
        if gone:
            await self._call(lambda: self.client.hdel(f"{self.prefix}:reports", *gone))
        return {name: entry["counters"] for name, entry in live.items() if name not in gone}

    async def drop_builds(self, keep: Collection[str]) -> int:
        """Delete the keys of every other build named in the builds set, through its key
        sets (never a SCAN of the keyspace), a batch per call."""
        builds = {b.decode() for b in await self._call(lambda: self.client.smembers(f"{self.prefix}:builds"))}
        dropped = 0
        for build_id in sorted(builds - set(keep)):
            dropped += await self._drop(build_id)
            await self._call(lambda build_id=build_id: self.client.srem(f"{self.prefix}:builds", build_id))  # type: ignore[misc]
            self._builds.discard(build_id)
        await self._forget_servers()
        return dropped

    async def _drop(self, build_id: str) -> int:
        deleted = 0
        for kind in ("paths", "tags"):
            while True:
                popped, n = await self._call(self._script("drop", build_id, DROP_BATCH, kind, key=self._key(build_id, kind)))
                deleted += n if kind == "paths" else 0
                if popped < DROP_BATCH:
                    break
        names = [self._key(build_id, name) for name in ("marks", "static", "seq", "log", "paths", "tags", "sweep")]
        await self._call(lambda: self.client.unlink(*names))
        return deleted

    async def _forget_servers(self) -> None:
        servers = await self._call(lambda: self.client.hgetall(f"{self.prefix}:servers"))
        cutoff = time.time() - SERVER_SEEN_S
        gone = [name for name, entry in servers.items() if orjson.loads(entry)["seen"] < cutoff]
        if gone:
            await self._call(lambda: self.client.hdel(f"{self.prefix}:servers", *gone))

    async def usage(self, build_id: str) -> tuple[int, int]:
        """Records of the build (its paths set: records evicted or expired since the writes last
        swept it are still counted), and the memory Redis uses."""
        records = await self._call(lambda: self.client.scard(self._key(build_id, "paths")))
        info = await self._call(lambda: self.client.info("memory"))
        nodes = info.values() if all(isinstance(v, dict) for v in info.values()) else [info]  # a cluster: per node
        return int(records), sum(int(node.get("used_memory", 0)) for node in nodes)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await _within(self._listener, self.timeout)
        await _within(self.client.aclose(), self.timeout)


_SCRIPTS = {"touch": _TOUCH, "put": _PUT, "mark_tag": _MARK_TAG, "stale": _STALE, "changes": _CHANGES, "renew": _RENEW, "release": _RELEASE, "drop": _DROP}


async def _within(awaitable: Awaitable[Any], timeout: float) -> None:
    """Await at most `timeout`, whatever happens: `wait_for` waits on after its timeout for an
    awaitable that does not end when cancelled (a cluster pub/sub closing mid-connect did
    not), which hung a server's shutdown. Outcomes are dropped: this is for closing."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.wait({task}, timeout=timeout)
    if not task.done():
        task.cancel()
        return
    if not task.cancelled():
        task.exception()  # retrieved: a failure to close is no news


def _change(entry: Any) -> Change:
    entry_id, flat = entry
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    kind, key, value = fields[b"k"].decode(), fields[b"key"].decode(), fields[b"v"].decode()
    seq = int(entry_id.split(b"-")[0])
    return Change(seq, "tag", key, float(value)) if kind == "tag" else Change(seq, "path", key, value)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def connect(url: str) -> RedisBackend:
    """A backend on the Redis at `url`, checked now (reachable, password, cluster or not),
    so that a wrong URL is one line at start, not an outage later. Our own query
    parameters: `timeout` (seconds per call) and `prefix` (of every key); REDIS_OPTIONS go
    to redis-py, such as for rediss:// `ssl_ca_certs=/path/ca.pem` (a private CA),
    `ssl_cert_reqs=none` (no check), `ssl_certfile` and `ssl_keyfile` (a client certificate)."""
    redis_url, options, shown = _split(url)
    timeout = _number(options.pop("timeout", str(DEFAULT_TIMEOUT_S)), shown)
    prefix = options.pop("prefix", DEFAULT_PREFIX)
    cluster = options.pop("cluster", "").lower()
    # One retry on a broken connection: after Redis restarts, every pooled connection is dead
    # and is reconnected on its next use rather than failing it (a second, false outage).
    # No retry on a timeout: the call's own bound (`timeout`) is the whole budget.
    reconnect = redis.asyncio.retry.Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    settings: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": reconnect}
    is_cluster = _check(redis_url, shown, timeout) if cluster in ("", "auto") else cluster in ("1", "yes", "true")
    try:
        if is_cluster:
            client: Any = redis.asyncio.cluster.RedisCluster.from_url(redis_url, **settings)
        else:
            client = redis.asyncio.Redis.from_url(redis_url, health_check_interval=10, **settings)
    except (RedisError, ValueError) as exc:
        raise CacheError(f"--cache {shown}: {_reason(exc)}") from None
    return RedisBackend(client, shown, prefix, timeout)


def _split(url: str) -> tuple[str, dict[str, str], str]:
    """The URL for redis-py (without our options), our options, and the URL without its password."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise CacheError(f"--cache {url.rpartition('@')[2]}: not a Redis URL: {exc}") from None
    base = url.partition("?")[0].partition("#")[0]  # urlunsplit would turn unix:///a into unix:/a
    shown = base.replace(parts.netloc, f"***@{parts.netloc.rpartition('@')[2]}", 1) if "@" in parts.netloc else base
    if parts.scheme not in REDIS_SCHEMES or (parts.scheme != "unix" and not parts.hostname) or (parts.scheme == "unix" and not parts.path):
        raise CacheError(f"--cache {shown}: not a Redis URL like redis://host:6379/0, rediss://… or unix:///path/redis.sock")
    if parts.scheme != "unix" and not (parts.path.strip("/") or "0").isdigit():
        raise CacheError(f"--cache {shown}: {parts.path.strip('/')!r} is not a database number (redis://host:6379/0)")
    unknown = sorted({k for k, _ in query} - OUR_OPTIONS - REDIS_OPTIONS)
    if unknown:
        raise CacheError(f"--cache {shown}: unknown option {unknown[0]!r} (isr's own: timeout, prefix, cluster)")
    options = {k: v for k, v in query if k in OUR_OPTIONS}
    rest = urlencode([(k, v) for k, v in query if k not in OUR_OPTIONS])
    redis_url = f"{base}?{rest}" if rest else base
    return redis_url, options, shown


def _number(text: str, shown: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 60:
        raise CacheError(f"--cache {shown}: timeout={text!r} is not a number of seconds from 0 to 60")
    return value


def _check(redis_url: str, shown: str, timeout: float) -> bool:
    """Ping the Redis (blocking, at start, within the timeout); whether it is a cluster node."""
    settings = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": redis.retry.Retry(NoBackoff(), 0)}
    try:
        client = redis.Redis.from_url(redis_url, **settings)
    except (RedisError, ValueError) as exc:
        raise CacheError(f"--cache {shown}: {_reason(exc)}") from None
    try:
        client.ping()
        info = client.info("cluster")
    except AuthenticationError as exc:
        raise CacheError(f"--cache {shown}: redis refused the credentials: {_reason(exc)}") from None
    except (RedisError, OSError) as exc:
        raise CacheError(f"--cache {shown}: cannot reach redis: {_reason(exc)}") from None
    finally:
        client.close()
    return bool(info.get("cluster_enabled"))
