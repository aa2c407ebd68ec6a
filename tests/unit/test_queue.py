"""The EventQueue's Python API: single events, batches, waiting, closing, errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pyarrow as pa
import pytest

import admf
from admf import EndOfStream, Event, EventQueue, Kind, QueueClosed, QueueFull
from tests.conftest import make_events


def trade(i: int) -> Event:
    return Event(Kind.TRADE, i, price=i, seq=i)


def test_push_pop_one_event_in_order() -> None:
    q = EventQueue(8)
    assert q.pop() is None
    for i in range(5):
        assert q.push(trade(i))
    assert len(q) == 5
    assert [q.pop() for _ in range(5)] == [trade(i) for i in range(5)]
    assert q.pop() is None


def test_capacity_rounds_up_and_bad_capacity_is_rejected() -> None:
    assert EventQueue(5).capacity == 8
    with pytest.raises(ValueError, match="capacity must be between 1 and"):
        EventQueue(0)
    with pytest.raises(OverflowError):
        EventQueue(-1)


def test_full_queue_reports_back_pressure_and_drops_nothing() -> None:
    q = EventQueue(4)
    results = [q.push(trade(i)) for i in range(6)]
    assert results == [True] * 4 + [False] * 2
    assert [q.pop() for _ in range(4)] == [trade(i) for i in range(4)]
    assert q.pop() is None


def test_push_wait_times_out_with_queue_full() -> None:
    q = EventQueue(1)
    q.push(trade(0))
    start = time.monotonic()
    with pytest.raises(QueueFull, match="stayed full"):
        q.push_wait(trade(1), timeout=0.05)
    assert time.monotonic() - start >= 0.05
    assert q.pop() == trade(0)
    assert q.pop() is None


def test_push_wait_proceeds_when_the_consumer_frees_room() -> None:
    q = EventQueue(1)
    q.push(trade(0))
    threading.Timer(0.05, q.pop).start()
    q.push_wait(trade(1), timeout=5)
    assert q.pop_wait(timeout=1) == trade(1)


def test_pop_wait_releases_the_gil_and_wakes_on_push() -> None:
    q = EventQueue(8)
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
        q.push(trade(7))

    t = threading.Thread(target=spin)
    t.start()
    threading.Timer(0.1, stop.set).start()
    got = q.pop_wait(timeout=5)
    t.join()
    assert got == trade(7)
    assert ticks > 1000, "the other thread could not run while pop_wait waited"


def test_pop_wait_times_out_with_none() -> None:
    q = EventQueue(8)
    start = time.monotonic()
    assert q.pop_wait(timeout=0.05) is None
    assert time.monotonic() - start >= 0.05
    assert q.wait(timeout=0) is False


def test_close_rejects_producers_and_drains_then_ends() -> None:
    q = EventQueue(8)
    q.push(trade(1))
    q.push_batch(make_events(2))
    assert q.close() is True
    assert q.close() is False
    assert q.closed
    with pytest.raises(QueueClosed, match="closed"):
        q.push(trade(2))
    with pytest.raises(QueueClosed):
        q.push_wait(trade(2), timeout=1)
    with pytest.raises(QueueClosed):
        q.push_batch(make_events(3))
    with pytest.raises(QueueClosed):
        q.push_batch(admf.to_record_batch(make_events(3)))
    assert q.pop() == trade(1)
    assert len(q.pop_batch()) == 2
    with pytest.raises(EndOfStream):
        q.pop()
    with pytest.raises(EndOfStream):
        q.pop_wait()
    with pytest.raises(EndOfStream):
        q.pop_batch(timeout=None)
    assert issubclass(EndOfStream, QueueClosed)


def test_close_wakes_a_waiting_consumer() -> None:
    q = EventQueue(8)
    threading.Timer(0.05, q.close).start()
    with pytest.raises(EndOfStream):
        q.pop_wait(timeout=5)


def test_iteration_yields_until_end_of_stream() -> None:
    q = EventQueue(8)
    for i in range(3):
        q.push(trade(i))
    q.close()
    assert list(q) == [trade(i) for i in range(3)]


def test_numpy_batch_round_trip() -> None:
    q = EventQueue(16)
    events = make_events(10)
    assert q.push_batch(events) == 10
    out = q.pop_batch()
    assert out.dtype == admf.EVENT_DTYPE
    assert out.tobytes() == events.tobytes()
    assert len(q.pop_batch()) == 0


def test_batch_push_takes_the_prefix_that_fits() -> None:
    q = EventQueue(8)
    events = make_events(20)
    assert q.push_batch(events) == 8
    assert q.push_batch(events[8:]) == 0
    assert list(q.pop_batch(max_events=3)["seq"]) == [0, 1, 2]
    assert q.push_batch(events[8:]) == 3
    assert list(q.pop_batch()["seq"]) == [3, 4, 5, 6, 7, 8, 9, 10]


def test_batch_push_with_timeout_waits_for_room() -> None:
    q = EventQueue(8)
    events = make_events(100)
    received: list[np.ndarray] = []

    def consume() -> None:
        while sum(len(b) for b in received) < 100:
            received.append(q.pop_batch(timeout=1))

    t = threading.Thread(target=consume)
    t.start()
    assert q.push_batch(events, timeout=None) == 100
    t.join()
    assert np.concatenate(received).tobytes() == events.tobytes()


def test_batch_push_timeout_returns_how_many_were_taken() -> None:
    q = EventQueue(4)
    assert q.push_batch(make_events(10), timeout=0.02) == 4


def test_arrow_batch_round_trip() -> None:
    q = EventQueue(16)
    events = make_events(10)
    batch = admf.to_record_batch(events)
    assert q.push_batch(batch) == 10
    out = q.pop_record_batch(max_events=6)
    assert out.schema == admf.EVENT_SCHEMA
    assert out.equals(batch.slice(0, 6))
    q.push_batch(pa.Table.from_batches([batch.slice(0, 2)]))
    rest = q.pop_batch()
    assert list(rest["seq"]) == [6, 7, 8, 9, 0, 1]


def test_popped_arrow_batches_own_their_memory() -> None:
    """A popped batch (or one column of it) stays intact while later batches reuse the
    memory of released ones."""
    q = EventQueue(1024)
    events = make_events(1000)
    q.push_batch(events)
    kept = q.pop_record_batch(max_events=300)
    column = q.pop_record_batch(max_events=300).column("price")
    for _ in range(20):  # released batches go back to the spare blocks and come out again
        q.push_batch(make_events(700, producer=9))
        q.pop_record_batch()
    assert np.array_equal(admf.from_arrow(kept), events[:300])
    assert column.to_pylist() == events["price"][300:600].tolist()


def test_arrow_batches_at_an_offset_or_unaligned_are_read_right() -> None:
    q = EventQueue(64)
    events = make_events(20)
    batch = admf.to_record_batch(events)
    assert q.push_batch(batch.slice(7, 9)) == 9
    assert np.array_equal(q.pop_batch(), events[7:16])
    # Columns whose values start at an odd address: pyarrow hands them over as they are,
    # and the queue reads them another way.
    arrays = []
    for field in admf.EVENT_SCHEMA:
        raw = np.ascontiguousarray(events[field.name]).view(np.uint8)
        shifted = np.empty(raw.size + 1, dtype=np.uint8)[1:]
        shifted[:] = raw
        arrays.append(pa.Array.from_buffers(field.type, len(events), [None, pa.py_buffer(shifted)]))
    unaligned = pa.RecordBatch.from_arrays(arrays, schema=admf.EVENT_SCHEMA)
    assert q.push_batch(unaligned) == 20
    assert np.array_equal(q.pop_batch(), events)


def test_arrow_columns_with_nulls_are_refused() -> None:
    q = EventQueue(8)
    batch = admf.to_record_batch(make_events(3))
    with_null = batch.set_column(3, "price", pa.array([1, None, 3], pa.int64()))
    with pytest.raises(ValueError, match="'price' has 1 nulls"):
        q.push_batch(with_null)
    assert len(q) == 0


def test_non_contiguous_numpy_batches_are_accepted() -> None:
    q = EventQueue(16)
    events = make_events(10)
    assert q.push_batch(events[::2]) == 5
    assert list(q.pop_batch()["seq"]) == [0, 2, 4, 6, 8]


@pytest.mark.parametrize(
    ("batch", "error", "message"),
    [
        (np.zeros(4, dtype=np.int64), TypeError, r"expected an array of admf\.EVENT_DTYPE"),
        (np.zeros((2, 2), dtype=admf.EVENT_DTYPE), ValueError, r"expected a 1-D array"),
        ([1, 2, 3], TypeError, r"expected a numpy array of admf\.EVENT_DTYPE"),
        (
            pa.record_batch({"seq": pa.array([1], pa.uint64())}),
            TypeError,
            r"columns of admf\.EVENT_SCHEMA",
        ),
    ],
)
def test_wrong_batches_name_what_was_expected(
    batch: object, error: type[Exception], message: str
) -> None:
    q = EventQueue(8)
    with pytest.raises(error, match=message):
        q.push_batch(batch)  # type: ignore[arg-type]
    assert len(q) == 0


def test_wrong_single_event_types_are_rejected() -> None:
    q = EventQueue(8)
    with pytest.raises(TypeError, match="Event"):
        q.push(make_events(1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be None or a non-negative"):
        q.pop_wait(timeout=-1)
    with pytest.raises(ValueError, match="max_events must be at least 1"):
        q.pop_batch(max_events=0)


def test_one_consumer_at_a_time() -> None:
    q = EventQueue(8)
    started = threading.Event()

    def waiter() -> None:
        started.set()
        q.pop_wait(timeout=0.5)

    t = threading.Thread(target=waiter)
    t.start()
    started.wait()
    time.sleep(0.05)
    with pytest.raises(RuntimeError, match="single consumer"):
        q.pop()
    t.join()


def test_producer_threads_lose_duplicate_and_reorder_nothing() -> None:
    producers, per = 4, 20_000
    q = EventQueue(256)

    def produce(pid: int) -> None:
        events = make_events(per, producer=pid)
        for start in range(0, per, 500):
            chunk = events[start : start + 500]
            if pid % 2:
                q.push_batch(chunk, timeout=None)
            else:
                for row in chunk:
                    q.push_wait(Event.from_bytes(row.tobytes()))

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    received = []
    total = 0
    while total < producers * per:
        batch = q.pop_batch(timeout=1)
        received.append(batch)
        total += len(batch)
    for t in threads:
        t.join()
    allev = np.concatenate(received)
    for pid in range(producers):
        mine = allev[allev["instrument"] == pid]
        assert list(mine["seq"]) == list(range(per))


def test_repr() -> None:
    q = EventQueue(4)
    q.push(trade(1))
    assert repr(q) == "<EventQueue 1/4 events, open>"


def test_batches_cross_the_end_of_the_ring_intact() -> None:
    # Capacity 8 and runs of 5: every other push and pop wraps around the ring's end, where
    # a run is copied (or transposed, for Arrow) in two pieces.
    q = EventQueue(8)
    events = make_events(200)
    for start in range(0, 200, 5):
        chunk = events[start : start + 5]
        as_arrow = start % 10 == 0
        assert q.push_batch(admf.to_record_batch(chunk) if as_arrow else chunk) == 5
        back = admf.from_arrow(q.pop_record_batch()) if as_arrow else q.pop_batch()
        assert back.tobytes() == chunk.tobytes()


def test_popped_events_are_new_objects_each_time() -> None:
    # Popped events come from a free list of dead Event objects; a live one is never reused.
    q = EventQueue(8)
    kept = []
    for i in range(50):
        assert q.push(Event(Kind.TRADE, i, price=i, qty=2 * i))
        popped = q.pop()
        assert popped is not None
        kept.append(popped)
    assert [(e.ts, e.price_fx, e.qty_fx) for e in kept] == [(i, i, 2 * i) for i in range(50)]
    assert len({id(e) for e in kept}) == 50
    assert kept[3] == Event(Kind.TRADE, 3, price=3, qty=6)
    assert hash(kept[3]) == hash(Event(Kind.TRADE, 3, price=3, qty=6))
    assert kept[3] != kept[4]
    assert (kept[3] == "not an event") is False


def test_a_spinning_wait_finds_an_event_pushed_meanwhile_and_refuses_a_bad_spin() -> None:
    q = EventQueue(8)
    pusher = threading.Timer(0.01, lambda: q.push(Event(Kind.TRADE, 1)))
    pusher.start()
    # Polls for up to 1 s (the GIL released): the event pushed after 10 ms ends it.
    assert q.wait(5.0, spin=1.0)
    pusher.join()
    assert len(q.pop_batch(timeout=1.0, spin=0.001)) == 1
    assert not q.wait(0.01, spin=0.002)  # nothing comes: spin, then the timeout
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="spin must be a number of seconds >= 0"):
            q.wait(0.0, spin=bad)


def test_hand_off_lets_a_polling_consumer_apply_the_burst_before_the_producer_goes_on() -> None:
    q = EventQueue(64)
    applied: list[int] = []
    polling = threading.Event()

    def consumer() -> None:
        while True:
            polling.set()
            try:
                batch = q.pop_batch(timeout=5.0, spin=1.0)
            except EndOfStream:
                return
            applied.extend(batch["ts"].tolist())  # Python work, with the GIL

    # Nothing to hand over: no consumer waits, and an empty queue needs none.
    assert not q.hand_off()
    thread = threading.Thread(target=consumer)
    thread.start()
    try:
        polling.wait(5.0)
        assert not q.hand_off()  # the consumer polls, but the queue is empty
        handed_over = 0
        for burst in range(1, 51):
            time.sleep(0.0005)  # the consumer is back to polling
            for i in range(3):
                assert q.push(Event(Kind.TRADE, burst * 10 + i))
            handed = q.hand_off(1.0)
            # Once it returns True, the consumer has popped and applied the burst and waits
            # again: nothing is left in the queue and the burst is in `applied`.
            if handed:
                handed_over += 1
                assert len(q) == 0
                assert applied[-3:] == [burst * 10 + i for i in range(3)]
        # The consumer had 0.5 ms to get back to polling before each burst: a loaded machine
        # may keep it from some of them, not from most.
        assert handed_over >= 40
        assert len(applied) == 150
    finally:
        q.close()
        thread.join()
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="max_wait must be a number of seconds >= 0"):
            q.hand_off(bad)


def test_hand_off_waits_no_longer_than_max_wait_for_a_slow_consumer() -> None:
    q = EventQueue(8)
    took = threading.Event()

    def consumer() -> None:
        q.pop_batch(timeout=5.0, spin=5.0)
        took.set()
        time.sleep(0.3)  # a slow handler (the GIL released, so the producer's clock runs)

    thread = threading.Thread(target=consumer)
    thread.start()
    try:
        time.sleep(0.05)  # the consumer polls
        q.push(Event(Kind.TRADE, 1))
        start = time.monotonic()
        assert not q.hand_off(0.02)
        assert took.is_set()
        assert time.monotonic() - start < 0.25
    finally:
        thread.join()
