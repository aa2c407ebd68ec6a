"""asyncio producers and consumers of the EventQueue."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import admf
from admf import EndOfStream, Event, EventQueue, Kind
from tests.conftest import make_events


@pytest.mark.asyncio
async def test_async_producers_and_an_async_consumer() -> None:
    q = EventQueue(64)
    producers, per = 4, 2_000

    async def produce(pid: int) -> None:
        events = make_events(per, producer=pid)
        for start in range(0, per, 100):
            if pid % 2:
                await q.push_async(events[start : start + 100])
            else:
                for row in events[start : start + 100]:
                    await q.push_async(Event.from_bytes(row.tobytes()))
            await asyncio.sleep(0)

    async def produce_all() -> None:
        await asyncio.gather(*(produce(p) for p in range(producers)))
        q.close()

    received: list[np.ndarray] = []

    async def consume() -> None:
        async for batch in q.batches():
            received.append(batch)

    await asyncio.gather(produce_all(), consume())
    allev = np.concatenate(received)
    assert len(allev) == producers * per
    for pid in range(producers):
        assert list(allev[allev["instrument"] == pid]["seq"]) == list(range(per))


@pytest.mark.asyncio
async def test_awaiting_a_batch_does_not_block_the_loop() -> None:
    q = EventQueue(8)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(10):
            ticks += 1
            await asyncio.sleep(0.005)
        q.push(Event(Kind.TRADE, 1))

    batch, _ = await asyncio.gather(q.pop_batch_async(), ticker())
    assert ticks == 10
    assert len(batch) == 1


@pytest.mark.asyncio
async def test_thread_producer_wakes_an_async_consumer_and_close_ends_it() -> None:
    q = EventQueue(8)

    def later() -> None:
        q.push_batch(make_events(3))
        q.close()

    threading.Timer(0.05, later).start()
    batches = [b async for b in q.batches()]
    assert sum(len(b) for b in batches) == 3
    with pytest.raises(EndOfStream):
        await q.pop_batch_async()


@pytest.mark.asyncio
async def test_async_push_waits_for_room() -> None:
    q = EventQueue(2)
    q.push_batch(make_events(2))

    async def drain_later() -> None:
        await asyncio.sleep(0.05)
        q.pop_batch()

    await asyncio.gather(q.push_async(admf.to_record_batch(make_events(2))), drain_later())
    assert len(q) == 2
