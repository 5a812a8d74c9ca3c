"""The dashboard's sign-in session: a signed, expiring cookie value that is never the token.

A value is `<expiry>.<nonce>.<mac>`, the mac being HMAC-SHA256 of `<expiry>.<nonce>` under
a key derived from the revalidate token with a fixed context string. Deriving the key,
rather than drawing a random secret at start, is what lets every process of
`--workers N` (and a restarted server) accept a session another one issued; a new token
is a new key, so changing the token ends every session. Computing the key needs the
token, and whoever holds the token needs no session: deriving gives nothing away.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SESSION_S = 12 * 3600  # seconds a sign-in lasts
_CONTEXT = b"isr dashboard session v1"  # a key for sessions only: never usable as the token


def as_bytes(text: str) -> bytes:
    """Any str as bytes, for comparisons: headers with non-UTF-8 bytes arrive as lone surrogates."""
    return text.encode("utf-8", "surrogatepass")


class Sessions:
    def __init__(self, token: str) -> None:
        self._key = hmac.new(as_bytes(token), _CONTEXT, hashlib.sha256).digest()

    def issue(self, now: float) -> str:
        """A new session value, valid for SESSION_S seconds from `now`."""
        payload = f"{int(now) + SESSION_S}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._mac(payload)}"

    def valid(self, value: str, now: float) -> bool:
        """Signed by this token's key and not expired (nor dated beyond one lifetime ahead)."""
        payload, _, mac = value.rpartition(".")
        expiry, _, nonce = payload.partition(".")
        if not (expiry.isascii() and expiry.isdigit() and nonce):
            return False
        signed = hmac.compare_digest(as_bytes(mac), self._mac(payload).encode())
        return signed and now < int(expiry) <= now + SESSION_S

    def _mac(self, payload: str) -> str:
        return hmac.new(self._key, as_bytes(payload), hashlib.sha256).hexdigest()
