"""A bundle's capacity (isr.runtime.pool.Slots): a semaphore whose slots can be lent (issue 9, item 4)."""

import asyncio

import pytest

from isr.runtime.pool import Slots


async def test_at_most_size_run_and_waiters_go_in_order() -> None:
    slots = Slots(2)
    await slots.acquire()
    await slots.acquire()
    assert slots.full
    order: list[int] = []

    async def wait(n: int) -> None:
        await slots.acquire()
        order.append(n)

    waiters = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert slots.waiting == 3 and order == []
    slots.release()
    slots.release()
    await asyncio.sleep(0)
    assert order == [0, 1] and slots.busy == 2
    slots.release()
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]


async def test_a_lent_slot_runs_a_waiter_and_is_taken_back_over_the_size() -> None:
    slots = Slots(1)
    await slots.acquire()  # the webhook
    waiter = asyncio.create_task(slots.acquire())  # the regeneration it waits for
    await asyncio.sleep(0)
    assert not waiter.done()
    slots.release()  # lent while the webhook waits
    await asyncio.wait_for(waiter, 1)
    slots.take()  # the webhook resumes
    assert slots.busy == 2 and slots.full
    slots.release()
    slots.release()
    assert slots.busy == 0 and not slots.full


async def test_a_cancelled_waiter_leaves_the_queue_and_passes_on_a_grant() -> None:
    slots = Slots(1)
    await slots.acquire()
    gone = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert slots.waiting == 0
    granted = asyncio.create_task(slots.acquire())
    after = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # granted gets it ...
    granted.cancel()  # ... and is cancelled before it runs: `after` must get it
    with pytest.raises(asyncio.CancelledError):
        await granted
    await asyncio.wait_for(after, 1)
    assert slots.busy == 1
