"""Slowing down token guessing: per client, a few free wrong tries, then a doubling wait.

A client that must wait is answered 429 at once, before its token is even compared (a
right token too, or the answer would tell a guesser when it hit), so nothing sleeps on
the event loop. The table keeps the most recently failing clients only, so a flood of
addresses costs bounded memory. A right token does not clear the count: behind a proxy
every client shares one address, and a scraper's right token every few seconds would
otherwise hand a guesser fresh free tries.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

FREE_FAILURES = 5  # wrong tries before the first wait
FIRST_WAIT_S = 1.0  # seconds; doubles with every further wrong try
MAX_WAIT_S = 300.0  # seconds; the longest wait
MAX_DOUBLINGS = math.ceil(math.log2(MAX_WAIT_S / FIRST_WAIT_S))  # past these the wait is MAX_WAIT_S
FORGET_S = 3600.0  # seconds without a wrong try after which a client starts afresh
MAX_CLIENTS = 10_000  # entries; the least recently failing is dropped first


@dataclass
class _Failures:
    count: int
    last: float


class Throttle:
    def __init__(self, max_clients: int = MAX_CLIENTS) -> None:
        self._clients: OrderedDict[str, _Failures] = OrderedDict()
        self._max = max_clients

    def wait(self, client: str, now: float) -> float:
        """Seconds before `client` may try a token again (0: now)."""
        failures = self._current(client, now)
        if failures is None or failures.count < FREE_FAILURES:
            return 0.0
        doublings = min(failures.count - FREE_FAILURES, MAX_DOUBLINGS)  # 2.0 ** 1100 overflows
        wait = min(FIRST_WAIT_S * 2.0**doublings, MAX_WAIT_S)
        return max(failures.last + wait - now, 0.0)

    def failed(self, client: str, now: float) -> None:
        failures = self._current(client, now) or _Failures(0, now)
        failures.count += 1
        failures.last = now
        self._clients[client] = failures
        self._clients.move_to_end(client)
        if len(self._clients) > self._max:
            self._clients.popitem(last=False)

    def __len__(self) -> int:
        return len(self._clients)

    def _current(self, client: str, now: float) -> _Failures | None:
        failures = self._clients.get(client)
        if failures is not None and now - failures.last > FORGET_S:
            del self._clients[client]
            return None
        return failures
