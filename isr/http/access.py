"""Who may see the operator pages (dashboard, logs, stats, metrics), decided per request.

Open without a token only to an HTTP/1.1 request from a loopback address, naming a
loopback host in `Host`, and relayed by no proxy: a reverse proxy on the same machine
connects from loopback, and DNS rebinding sends a foreign `Host`, so neither opens them,
whatever address the server listens on. nginx's plain `proxy_pass http://127.0.0.1:3000`
adds no proxy header and names 127.0.0.1 in `Host`, but it speaks HTTP/1.0 unless told
otherwise (and when told, the documented setup sends X-Forwarded-For). Everyone else shows the revalidate token (Bearer) or a
session from the sign-in form; with no token configured, nobody else gets in.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
from dataclasses import dataclass

from aiohttp import web

from isr.http.session import Sessions, as_bytes
from isr.http.throttle import Throttle

log = logging.getLogger("isr")

COOKIE = "isr_session"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
# Any of these means a proxy relayed the request; the last two are stricter than the spec asks.
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto")


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    retry_after: int = 0  # seconds, for 429


CLOSED = Refusal(403, "FORBIDDEN", "open only to loopback requests: set ISR_REVALIDATE_TOKEN to open it to others")
SIGN_IN = Refusal(401, "UNAUTHORIZED", "needs the revalidate token (Authorization: Bearer) or a sign-in")
WRONG = Refusal(401, "UNAUTHORIZED", "wrong token")


class Gate:
    def __init__(self, token: str) -> None:
        self._token = as_bytes(token)
        self.sessions = Sessions(token)
        self.throttle = Throttle()

    def check(self, request: web.BaseRequest, now: float) -> Refusal | None:
        """None when the request may see the operator pages."""
        if is_local(request):
            return None
        if not self._token:
            return CLOSED
        if self.sessions.valid(request.cookies.get(COOKIE, ""), now):
            return None  # before the throttle: a guesser sharing the address locks no session out
        header = request.headers.get("Authorization")
        if header is None:
            return SIGN_IN
        scheme, _, given = header.partition(" ")
        return self.try_token(request, given.strip() if scheme.lower() == "bearer" else None, now)

    def try_token(self, request: web.BaseRequest, given: str | None, now: float) -> Refusal | None:
        """None when `given` is the token; a wrong one counts against the client."""
        if not self._token:
            return CLOSED
        client = client_of(request.remote)
        wait = self.throttle.wait(client, now)
        if wait:
            return Refusal(429, "TOO_MANY_REQUESTS", f"too many wrong tokens: try again in {math.ceil(wait)} s", math.ceil(wait))
        if given is not None and hmac.compare_digest(as_bytes(given), self._token):
            return None
        self.throttle.failed(client, now)
        if wait := self.throttle.wait(client, now):  # at most once a wait per client: no log flood
            log.warning("wrong tokens for the operator pages from %s: it waits %d s", client, math.ceil(wait))
        return WRONG


def is_local(request: web.BaseRequest) -> bool:
    hosts = request.headers.getall("Host", [])
    return (
        request.version >= (1, 1)
        and loopback_address(request.remote)
        and len(hosts) == 1
        and loopback_host(hosts[0])
        and not any(name in request.headers for name in PROXY_HEADERS)
    )


def loopback_address(remote: str | None) -> bool:
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack listener
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def loopback_host(host: str) -> bool:
    """`localhost`, `127.0.0.1` or `[::1]`, with any port, in any case."""
    host = host.strip().lower()
    name, colon, port = host.rpartition(":") if not host.endswith("]") else ("", "", "")
    if colon and (port.isascii() and port.isdigit()):
        host = name
    return host in LOOPBACK_HOSTS


def client_of(remote: str | None) -> str:
    """Whom wrong tries count against: the peer address, an IPv6 one by its /64.

    Forwarding headers are not used: each proxy sets or passes them differently, so some
    setup would let a guesser name a fresh client per try. Behind a proxy all clients
    therefore share one count, which a valid session and loopback access bypass.
    """
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote or ""
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
