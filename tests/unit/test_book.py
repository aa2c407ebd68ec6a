"""admf.OrderBook and admf.SimVenue through Python: operations, views, errors, batches,
matching and the simulated venue."""

from __future__ import annotations

import numpy as np
import pytest

from admf import (
    EVENT_DTYPE,
    SCALE,
    BookError,
    Event,
    Flag,
    Kind,
    OrderBook,
    Side,
    SimVenue,
    _core,
    to_record_batch,
)

BUY, SELL = Side.BUY, Side.SELL


def deltas(*rows: tuple[int, int, int, int, int]) -> np.ndarray:
    """(kind, order_id, side, price, qty) rows as an EVENT_DTYPE array."""
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (kind, oid, side, price, qty) in enumerate(rows):
        out[i]["kind"], out[i]["order_id"], out[i]["side"] = kind, oid, side
        out[i]["price"], out[i]["qty"], out[i]["ts"] = price, qty, i
    return out


@pytest.fixture
def book() -> OrderBook:
    b = OrderBook(tick=10)
    b.add(1, BUY, 100, 5)
    b.add(2, BUY, 100, 7)
    b.add(3, BUY, 90, 1)
    b.add(4, SELL, 120, 2)
    b.add(5, SELL, 130, 4)
    return b


def test_public_class_is_the_compiled_one() -> None:
    assert issubclass(OrderBook, _core.OrderBook)
    assert OrderBook.add is _core.OrderBook.add
    assert OrderBook.bbo is _core.OrderBook.bbo


def test_l2_and_l3_views(book: OrderBook) -> None:
    assert book.bbo() == (100, 120)
    assert book.best_bid() == (100, 12)
    assert book.best_ask() == (120, 2)
    assert book.depth(BUY) == [(100, 12, 2), (90, 1, 1)]
    assert book.depth(SELL, 1) == [(120, 2, 1)]
    assert book.size_at(BUY, 100) == 12
    assert book.orders_at(BUY, 100) == 2
    assert book.queue(BUY, 100) == [(1, 5), (2, 7)]
    assert book.order(2) == (BUY, 100, 7, 0)
    assert book.order(99) is None
    assert len(book) == 5
    assert 4 in book
    assert book.level_count(SELL) == 2
    assert repr(book) == "<OrderBook 5 orders, bid 100, ask 120>"
    empty = OrderBook()
    assert empty.bbo() == (None, None)
    assert empty.best_bid() is None


def test_priority_rules(book: OrderBook) -> None:
    assert book.reduce(1, 2) == 2
    assert book.queue(BUY, 100) == [(1, 3), (2, 7)]
    book.modify(1, 100, 2)
    assert book.queue(BUY, 100) == [(1, 2), (2, 7)]
    book.modify(1, 100, 3)
    assert book.queue(BUY, 100) == [(2, 7), (1, 3)]
    book.modify(2, 110, 7)
    assert book.bbo() == (110, 120)
    assert book.execute(2, 3) == 4
    assert book.cancel(2) == 4
    assert book.bbo() == (100, 120)
    book.clear(SELL)
    assert book.bbo() == (100, None)
    book.clear()
    assert len(book) == 0
    book.check_invariants()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda b: b.add(1, BUY, 80, 1), "order 1: duplicate order id"),
        (lambda b: b.add(9, BUY, 120, 1), "order 9: a buy at 120 crosses the best ask 120"),
        (lambda b: b.add(9, SELL, 100, 1), "order 9: a sell at 100 crosses the best bid 100"),
        (lambda b: b.add(9, BUY, 80, 0), "order 9: size 0 is not positive"),
        (lambda b: b.add(9, BUY, 80, -3), "order 9: size -3 is not positive"),
        (lambda b: b.add(9, BUY, 85, 1), "order 9: price 85 is not a multiple of the tick 10"),
        (lambda b: b.add(9, 0, 80, 1), "order 9: side 0 is not 1"),
        (lambda b: b.cancel(9), "order 9: unknown order id"),
        (lambda b: b.reduce(9, 1), "order 9: unknown order id"),
        (lambda b: b.execute(1, 6), "order 1: execution of 6 exceeds the remaining size 5"),
        (lambda b: b.modify(1, 130, 5), "order 1: a buy at 130 crosses"),
        (lambda b: b.modify(9, 80, 5), "order 9: unknown"),
        (lambda b: b.apply_delta(99, 1, BUY, 80, 1), "event kind 99 is not a book delta"),
        (lambda b: b.reduce_anonymous(BUY, 100, 1, order_id=7), "order 7: unknown"),
    ],
)
def test_errors_name_the_order_and_leave_the_book_unchanged(
    book: OrderBook, call: object, match: str
) -> None:
    before = book.snapshot()
    with pytest.raises(BookError, match=match):
        call(book)  # type: ignore[operator]
    assert np.array_equal(book.snapshot(), before)
    assert issubclass(BookError, ValueError)


def test_bad_tick_is_refused() -> None:
    with pytest.raises(BookError, match="tick size 0"):
        OrderBook(tick=0)


def test_anonymous_size_absorbs_unknown_orders() -> None:
    b = OrderBook()
    b.add_anonymous(BUY, 100, 10)
    b.add(1, BUY, 100, 5)
    assert b.size_at(BUY, 100) == 15
    assert b.anonymous_at(BUY, 100) == 10
    b.apply_delta(Kind.BOOK_EXECUTE, 777, BUY, 100, 4)
    b.apply_delta(Kind.BOOK_CANCEL, 778, BUY, 100, 6)
    assert b.anonymous_at(BUY, 100) == 0
    assert b.queue(BUY, 100) == [(1, 5)]
    with pytest.raises(BookError, match="order 779: unknown order id"):
        b.apply_delta(Kind.BOOK_CANCEL, 779, BUY, 100, 1)


def test_batches_numpy_and_arrow_agree() -> None:
    batch = deltas(
        (Kind.BOOK_ADD, 1, BUY, 100, 5),
        (Kind.BOOK_ADD, 2, SELL, 101, 5),
        (Kind.BOOK_ADD, 3, BUY, 100, 2),
        (Kind.BOOK_CANCEL, 1, BUY, 100, 2),
        (Kind.BOOK_EXECUTE, 2, SELL, 101, 1),
        (Kind.BOOK_MODIFY, 3, BUY, 99, 4),
        (Kind.BOOK_CANCEL, 1, BUY, 100, 0),
    )
    a, b = OrderBook(), OrderBook()
    assert a.apply_batch(batch) == 7
    assert b.apply_batch(to_record_batch(batch)) == 7
    assert np.array_equal(a.snapshot(), b.snapshot())
    assert a.depth(BUY) == [(99, 4, 1)]
    assert a.best_ask() == (101, 4)
    c = OrderBook()
    for ev in batch:
        c.apply(Event.from_bytes(ev.tobytes()))
    assert np.array_equal(a.snapshot(), c.snapshot())


def test_batch_error_names_the_event_and_keeps_the_prefix() -> None:
    batch = deltas(
        (Kind.BOOK_ADD, 1, BUY, 100, 5),
        (Kind.BOOK_ADD, 1, BUY, 100, 5),
        (Kind.BOOK_ADD, 2, BUY, 100, 5),
    )
    b = OrderBook()
    with pytest.raises(BookError, match="event 1 of the batch: order 1: duplicate"):
        b.apply_batch(batch)
    assert len(b) == 1
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        b.apply_batch(np.zeros(3, dtype=np.int64))  # type: ignore[arg-type]


def test_snapshot_restore_round_trip(book: OrderBook) -> None:
    book.add_anonymous(SELL, 140, 3)
    snap = book.snapshot()
    assert set(snap["kind"]) == {Kind.BOOK_ADD}
    assert np.all(snap["flags"] & Flag.SNAPSHOT)
    assert list(snap["order_id"]) == [1, 2, 3, 4, 5, 0]
    other = OrderBook(tick=10)
    other.add(42, BUY, 10, 1)
    other.restore(snap)
    assert np.array_equal(other.snapshot(), snap)
    assert 42 not in other
    bad = snap.copy()
    bad[1]["order_id"] = 1
    with pytest.raises(BookError, match="restore failed, the book is unchanged"):
        other.restore(bad)
    assert np.array_equal(other.snapshot(), snap)


def test_matching_order_types() -> None:
    b = OrderBook(maker_fee=-100_000, taker_fee=300_000)
    b.add(1, SELL, 101 * SCALE, 5 * SCALE)
    b.add(2, SELL, 101 * SCALE, 5 * SCALE)
    b.add(3, SELL, 103 * SCALE, 10 * SCALE)
    b.add(4, BUY, 99 * SCALE, 10 * SCALE)
    r = b.submit(10, BUY, 12 * SCALE, 102 * SCALE)
    assert (r.status, r.filled, r.remaining) == ("resting", 10 * SCALE, 2 * SCALE)
    taker = r.fills[r.fills["flags"] & Flag.AGGRESSOR != 0]
    maker = r.fills[r.fills["flags"] & Flag.AGGRESSOR == 0]
    assert list(taker["payload"]) == [1, 2]
    assert list(maker["order_id"]) == [1, 2]
    assert set(r.fills["kind"]) == {Kind.FILL}
    # 101 * 5 * 0.0003 = 0.1515 taker, 101 * 5 * -0.0001 = -0.0505 maker.
    assert list(taker["aux"]) == [151_500_000, 151_500_000]
    assert list(maker["aux"]) == [-50_500_000, -50_500_000]
    assert b.bbo() == (102 * SCALE, 103 * SCALE)
    assert b.submit(11, BUY, 11 * SCALE, 103 * SCALE, tif="FOK").status == "canceled"
    assert b.size_at(SELL, 103 * SCALE) == 10 * SCALE
    r = b.submit(12, SELL, 1 * SCALE, 102 * SCALE, post_only=True)
    assert (r.status, len(r.fills)) == ("rejected", 0)
    r = b.submit(13, SELL, 20 * SCALE, market=True)
    assert (r.status, r.filled) == ("canceled", 12 * SCALE)
    assert b.bbo() == (None, 103 * SCALE)
    r = b.submit(14, BUY, 4 * SCALE, 103 * SCALE, tif="IOC", own=True)
    assert r.status == "filled"
    assert np.all(r.fills[r.fills["order_id"] == 14]["flags"] & Flag.OWN)
    with pytest.raises(BookError, match="order 3: duplicate"):
        b.submit(3, BUY, 1, 100)
    with pytest.raises(ValueError, match="tif must be one of"):
        b.submit(15, BUY, 1, 100, tif="DAY")  # type: ignore[arg-type]
    b.check_invariants()


def test_sim_venue_queue_position_latency_and_fees() -> None:
    v = SimVenue(maker_fee=-SCALE // 10_000, latency_to_venue=10, latency_to_strategy=5)
    v.on_market(
        deltas(
            (Kind.BOOK_ADD, 1, BUY, 100 * SCALE, 5),
            (Kind.BOOK_ADD, 2, BUY, 100 * SCALE, 5),
            (Kind.BOOK_ADD, 3, SELL, 102 * SCALE, 5),
        )
    )
    assert len(v.submit_order(50, BUY, 3, 100 * SCALE, ts=2)) == 0
    assert v.pending == 1
    out = v.advance(12)
    assert (int(out[0]["kind"]), int(out[0]["ts"])) == (Kind.ORDER_ACCEPTED, 17)
    assert v.order(50) == (BUY, 100 * SCALE, 3, 0, 10)
    later = deltas(
        (Kind.BOOK_ADD, 4, BUY, 100 * SCALE, 7),
        (Kind.BOOK_CANCEL, 1, BUY, 100 * SCALE, 5),
        (Kind.BOOK_EXECUTE, 2, BUY, 100 * SCALE, 5),
        (Kind.BOOK_EXECUTE, 4, BUY, 100 * SCALE, 2),
    )
    later["ts"] += 20
    fills = v.on_market(later)
    assert len(fills) == 1
    f = fills[0]
    assert (int(f["kind"]), int(f["order_id"]), int(f["qty"]), int(f["payload"])) == (
        Kind.FILL,
        50,
        2,
        4,
    )
    assert int(f["flags"]) == Flag.OWN
    assert int(f["ts"]) == 23 + 5
    assert v.order(50) == (BUY, 100 * SCALE, 1, 2, 0)
    out = v.cancel_order(50, ts=30)
    out = v.advance(40)
    assert int(out[-1]["kind"]) == Kind.ORDER_CANCELED
    assert v.open_orders() == []
    out = v.submit_order(51, BUY, 1, 102 * SCALE, ts=40, post_only=True)
    out = v.advance(50)
    assert int(out[0]["kind"]) == Kind.ORDER_REJECTED
    assert repr(v).startswith("<SimVenue 0 own orders")
    with pytest.raises(BookError, match="not a book delta"):
        v.send(Event(Kind.SIGNAL, 0))
    with pytest.raises(ValueError, match="latencies must be non-negative"):
        SimVenue(latency_to_venue=-1)
