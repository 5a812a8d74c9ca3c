"""Encoding an engine Answer as an HTTP response: coding, conditional requests, extras."""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from isr.cache.compression import Encoding, choose
from isr.cache.record import Record, Variant
from isr.constants import CACHE_STATE, NO_STORE

_codings: dict[tuple[str, tuple[Encoding, ...]], Encoding] = {}  # memo: Accept-Encoding -> coding


def respond(
    request: web.BaseRequest,
    variant: Variant,
    state: str | None = None,
    record: Record | None = None,
    extra: dict[str, str] | None = None,
    now: float | None = None,
) -> web.Response:
    coding = _coding(request, variant.encodings)
    headers = variant.headers(coding).copy()
    if state is not None:
        headers[CACHE_STATE] = state
    if record is not None:
        headers["Age"] = str(max(int((now or time.time()) - record.generated_at), 0))
    if extra:
        headers.update(extra)
    etag = request.headers.get("If-None-Match")
    if etag is not None and variant.status == 200 and _matches(etag, variant.etags[coding]):
        headers.pop("Content-Encoding", None)
        return web.Response(status=304, headers=headers)
    return web.Response(status=variant.status, body=variant.bodies[coding], headers=headers)


def _coding(request: web.BaseRequest, available: tuple[Encoding, ...]) -> Encoding:
    if len(available) == 1:
        return "identity"
    accept = request.headers.get("Accept-Encoding", "")
    key = (accept, available)
    coding = _codings.get(key)
    if coding is None:
        if len(_codings) > 1024:
            _codings.clear()
        coding = _codings[key] = choose(accept, available)
    return coding


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return web.Response(
        status=status, body=body, content_type="application/json",
        headers={"Cache-Control": NO_STORE, **(headers or {})},
    )
