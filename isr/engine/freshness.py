"""Pure decisions about generations: when one goes stale, fresh or stale now, and when to
retry a failure. The server and `isr bench --simulate` both decide by these."""

from __future__ import annotations

import math
from typing import Protocol

from isr.constants import BACKOFF_FIRST_S, BACKOFF_MAX_S, HIT, STALE


class Dated(Protocol):
    """A generation as far as freshness goes: a Record, or the simulation's stand-in."""

    stale_at: float


def stale_at(generated_at: float, revalidate: float | bool) -> float:
    """When a generation made at `generated_at` goes stale: never with revalidate False."""
    return math.inf if revalidate is False else generated_at + revalidate  # one shared object: a HIT reads it warm


def state_of(record: Dated, now: float) -> str:
    return HIT if now < record.stale_at else STALE


def backoff_delay(failures: int) -> float:
    """Seconds before retrying after `failures` consecutive failed regenerations."""
    return min(BACKOFF_FIRST_S * 2.0 ** max(failures - 1, 0), BACKOFF_MAX_S)
