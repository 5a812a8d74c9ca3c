"""Pure decisions about generations: fresh or stale, and when to retry a failure."""

from __future__ import annotations

from isr.cache.record import Record
from isr.constants import BACKOFF_FIRST_S, BACKOFF_MAX_S, HIT, STALE


def state_of(record: Record, now: float) -> str:
    return HIT if now < record.stale_at else STALE


def backoff_delay(failures: int) -> float:
    """Seconds before retrying after `failures` consecutive failed regenerations."""
    return min(BACKOFF_FIRST_S * 2.0 ** max(failures - 1, 0), BACKOFF_MAX_S)
