"""An invocation waiting on the server's own work lends its bundle slot meanwhile.

A webhook that awaits `isr.revalidate()` holds a slot of its bundle while the
regeneration it waits for needs one; with as many webhooks as slots, nothing could
run (SPEC §4: no bundle configuration may deadlock). So while an invocation waits on
the server, its worker tells the pool, which lets another invocation have the slot;
when the wait ends, the invocation runs on over the bundle's size until it returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Lending:
    """Worker to pool: the invocation's slot is free to use (True), or needed again (False)."""

    lent: bool


_tell: Callable[[Lending], None] | None = None  # set in worker processes only
_waits = 0  # waits in progress in this invocation (concurrent revalidate() calls)


def install(tell: Callable[[Lending], None]) -> None:
    global _tell
    _tell = tell


@contextlib.contextmanager
def waiting_on_server() -> Iterator[None]:
    """Around a wait on the server; does nothing outside a worker (e.g. `isr revalidate`)."""
    global _waits
    if _tell is None:
        yield
        return
    _waits += 1
    if _waits == 1:
        _tell(Lending(True))
    try:
        yield
    finally:
        _waits -= 1
        if _waits == 0:
            _tell(Lending(False))
