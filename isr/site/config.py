"""isr.json: per-function limits and site defaults, validated once at load."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from isr.constants import (
    DEFAULT_BODY_LIMIT,
    DEFAULT_CACHE_DISK,
    DEFAULT_CACHE_MEMORY,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_DURATION_S,
    DEFAULT_MEMORY_MB,
    DEFAULT_REVALIDATE_S,
)
from isr.errors import ConfigError

Revalidate = int | bool  # seconds, or False: fresh until revalidated on demand

_FUNCTION_KEYS = {"memory", "maxDuration", "maxConcurrency"}
_DEFAULT_KEYS = _FUNCTION_KEYS | {"revalidate"}
_LIMIT_KEYS = {"requestBody", "responseBody"}
_CACHE_KEYS = {"memory", "disk"}
_TOP_KEYS = {"functions", "defaults", "limits", "cache"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


@dataclass(frozen=True)
class FunctionConfig:
    """The limits one function runs under; equal configs share a worker bundle."""

    memory: int = DEFAULT_MEMORY_MB  # MB
    max_duration: float = DEFAULT_MAX_DURATION_S  # seconds
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY  # worker processes of the bundle

    @property
    def bundle(self) -> str:
        return f"m{self.memory}-d{self.max_duration:g}-c{self.max_concurrency}"


@dataclass(frozen=True)
class SiteConfig:
    defaults: FunctionConfig = FunctionConfig()
    revalidate: Revalidate = DEFAULT_REVALIDATE_S
    request_body_limit: int = DEFAULT_BODY_LIMIT  # bytes
    response_body_limit: int = DEFAULT_BODY_LIMIT  # bytes
    cache_memory: int = DEFAULT_CACHE_MEMORY  # bytes the server process keeps of cached pages
    cache_disk: int = DEFAULT_CACHE_DISK  # bytes of the disk cache before LRU eviction
    functions: tuple[tuple[re.Pattern[str], dict[str, Any]], ...] = field(default=())

    def function_config(self, relpath: str) -> FunctionConfig:
        """The config of a function file (path relative to the site, '/'-separated)."""
        settings: dict[str, Any] = {}
        for pattern, overrides in self.functions:
            if pattern.fullmatch(relpath):
                settings.update(overrides)
        return replace(self.defaults, **settings)


def load_config(site: Path) -> SiteConfig:
    path = site / "isr.json"
    if not path.exists():
        return SiteConfig()
    try:
        raw = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    return parse_config(raw, str(path))


def parse_config(raw: Any, where: str = "isr.json") -> SiteConfig:
    section = _object(raw, where, _TOP_KEYS)
    defaults = _object(section.get("defaults", {}), f"{where}: defaults", _DEFAULT_KEYS)
    limits = _object(section.get("limits", {}), f"{where}: limits", _LIMIT_KEYS)
    cache = _object(section.get("cache", {}), f"{where}: cache", _CACHE_KEYS)
    return SiteConfig(
        defaults=FunctionConfig(**_function_settings(defaults, f"{where}: defaults")),
        revalidate=_revalidate(defaults.get("revalidate", DEFAULT_REVALIDATE_S), where),
        request_body_limit=_size(limits.get("requestBody", DEFAULT_BODY_LIMIT), where),
        response_body_limit=_size(limits.get("responseBody", DEFAULT_BODY_LIMIT), where),
        cache_memory=_size(cache.get("memory", DEFAULT_CACHE_MEMORY), f"{where}: cache.memory"),
        cache_disk=_size(cache.get("disk", DEFAULT_CACHE_DISK), f"{where}: cache.disk"),
        functions=_functions(section.get("functions", {}), where),
    )


def _object(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    return value


def _functions(value: Any, where: str) -> tuple[tuple[re.Pattern[str], dict[str, Any]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: functions: expected an object of glob -> settings")
    return tuple(
        (glob_pattern(glob), _function_settings(_object(settings, f"{where}: functions[{glob!r}]", _FUNCTION_KEYS), f"{where}: functions[{glob!r}]"))
        for glob, settings in value.items()
    )


def _function_settings(value: dict[str, Any], where: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if "memory" in value:
        memory = value["memory"]
        if not isinstance(memory, int) or isinstance(memory, bool) or not 128 <= memory <= 10240:
            raise ConfigError(f"{where}: memory must be a whole number of MB from 128 to 10240")
        settings["memory"] = memory
    if "maxDuration" in value:
        duration = value["maxDuration"]
        if not isinstance(duration, int | float) or isinstance(duration, bool) or not 0 < duration <= 900:
            raise ConfigError(f"{where}: maxDuration must be seconds, above 0 and at most 900")
        settings["max_duration"] = float(duration)
    if "maxConcurrency" in value:
        concurrency = value["maxConcurrency"]
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 64:
            raise ConfigError(f"{where}: maxConcurrency must be a whole number of workers from 1 to 64")
        settings["max_concurrency"] = concurrency
    return settings


def _revalidate(value: Any, where: str) -> Revalidate:
    if valid_revalidate(value):
        return value  # type: ignore[no-any-return]
    raise ConfigError(f"{where}: defaults.revalidate must be whole seconds >= 1, or false")


def valid_revalidate(value: Any) -> bool:
    """Whole seconds >= 1, or False (fresh until revalidated on demand)."""
    return value is False or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


def _size(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    size = parse_size(value) if isinstance(value, str) else None
    if size is None:
        raise ConfigError(f"{where}: sizes are like \"4.5mb\", \"512kb\" or a byte count")
    return size


def parse_size(text: str) -> int | None:
    """`<number>[b|kb|mb|gb]` in bytes (units of 1024), or None if it is not a size above 0."""
    match = _SIZE.match(text)
    if not match:
        return None
    size = int(float(match[1]) * _UNITS[(match[2] or "b").lower()])
    return size if size > 0 else None


def glob_pattern(glob: str) -> re.Pattern[str]:
    """vercel.json-style glob: `*` stays within a folder, `**` crosses folders.

    Brackets are literal so `pages/blog/[slug].py` names that file.
    """
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))
