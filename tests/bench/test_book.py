"""Order book figures through Python (run by `make bench`; disabled in the test run).

The same LOBSTER-like stream as the criterion bench `book/replay_lobster_like`
(`admf.book.lobster_like`), applied in one batch call, one call per message, and by a
plain-Python dict-of-deques book for the ratio; plus best bid + ask reads; plus deep books:
one order at each of ``ADMF_BOOK_LEVELS`` (default 1M) distinct levels, added best-first and
worst-first on both sides, and the restore of such a book from its snapshot.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import numpy as np
import pytest

from admf import SCALE, Kind, OrderBook, Side
from admf.book import lobster_like
from admf.data.lobster import TICK
from admf.events import EVENT_DTYPE

N = 200_000
BBO_READS = 200_000
# Room for the 2,000 to 4,000 orders the stream keeps resting, as in the criterion bench.
CAPACITY = 8_192


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return lobster_like(N, 42)


@pytest.fixture(scope="module")
def rows(stream: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    cols = [stream[name].tolist() for name in ("kind", "order_id", "side", "price", "qty")]
    return list(zip(*cols, strict=True))


def test_book_replay_batch(benchmark: Any, stream: np.ndarray) -> None:
    def run() -> OrderBook:
        book = OrderBook(TICK, capacity=CAPACITY)
        book.apply_batch(stream)
        return book

    benchmark.extra_info["elements"] = N
    book = benchmark.pedantic(run, rounds=10, warmup_rounds=1)
    book.check_invariants()


def test_book_replay_per_message(benchmark: Any, rows: list[tuple[int, ...]]) -> None:
    def run() -> OrderBook:
        book = OrderBook(TICK, capacity=CAPACITY)
        apply = book.apply_delta
        for kind, oid, side, price, qty in rows:
            apply(kind, oid, side, price, qty)
        return book

    benchmark.extra_info["elements"] = N
    book = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert len(book) > 1_000


def test_book_bbo(benchmark: Any, stream: np.ndarray) -> None:
    book = OrderBook(TICK)
    book.apply_batch(stream)
    bbo = book.bbo

    def run() -> None:
        for _ in range(BBO_READS):
            bbo()

    benchmark.extra_info["elements"] = BBO_READS
    benchmark.pedantic(run, rounds=10, warmup_rounds=1)


class DictOfDequesBook:
    """The plain-Python book to compare with: price -> deque of order ids per side, order id
    -> [side, price, size]; lazy deletion keeps cancels O(1)."""

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}
        self.levels: tuple[dict[int, deque[int]], dict[int, deque[int]]] = ({}, {})
        self.sizes: tuple[dict[int, int], dict[int, int]] = ({}, {})

    def add(self, oid: int, side: int, price: int, qty: int) -> None:
        self.orders[oid] = [side, price, qty]
        self.levels[side - 1].setdefault(price, deque()).append(oid)
        sizes = self.sizes[side - 1]
        sizes[price] = sizes.get(price, 0) + qty

    def reduce(self, oid: int, qty: int) -> None:
        order = self.orders[oid]
        side, price, size = order
        qty = min(qty, size)
        sizes = self.sizes[side - 1]
        sizes[price] -= qty
        if qty == size:
            del self.orders[oid]
            if sizes[price] == 0:
                del sizes[price]
                del self.levels[side - 1][price]
        else:
            order[2] = size - qty

    def best(self) -> tuple[int | None, int | None]:
        bids, asks = self.sizes
        return (max(bids) if bids else None, min(asks) if asks else None)


def test_dict_of_deques_replay(benchmark: Any, rows: list[tuple[int, ...]]) -> None:
    add_kind = int(Kind.BOOK_ADD)

    def run() -> DictOfDequesBook:
        book = DictOfDequesBook()
        add, reduce = book.add, book.reduce
        for kind, oid, side, price, qty in rows:
            if kind == add_kind:
                add(oid, side, price, qty)
            else:
                reduce(oid, qty)
        return book

    benchmark.extra_info["elements"] = N
    book = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    reference = OrderBook(TICK)
    reference.apply_batch(lobster_like(N, 42))
    assert book.best() == reference.bbo()


# Deep books: one order at each of LEVELS distinct prices, added in price order. Ascending
# bids and descending asks make every order a new best level; descending bids and ascending
# asks put every one a level deeper than all before it (the case that was quadratic).
LEVELS = int(os.environ.get("ADMF_BOOK_LEVELS", "1000000"))


def deep_adds(side: Side, ascending: bool, n: int = LEVELS) -> np.ndarray:
    ticks = np.arange(1, n + 1, dtype=np.int64)
    if not ascending:
        ticks = ticks[::-1]
    events = np.zeros(n, dtype=EVENT_DTYPE)
    events["kind"] = Kind.BOOK_ADD
    events["order_id"] = np.arange(1, n + 1) + (0 if side == Side.BUY else n)
    events["side"] = side
    # Bids below asks, so that neither direction ever crosses.
    base = 0 if side == Side.BUY else (n + 1) * TICK
    events["price"] = base + ticks * TICK
    events["qty"] = 100 * SCALE
    return events


@pytest.mark.parametrize(
    ("side", "ascending"),
    [(Side.BUY, True), (Side.BUY, False), (Side.SELL, True), (Side.SELL, False)],
    ids=["bids-ascending", "bids-descending", "asks-ascending", "asks-descending"],
)
def test_book_deep_levels_insert(benchmark: Any, side: Side, ascending: bool) -> None:
    events = deep_adds(side, ascending)

    def run() -> OrderBook:
        book = OrderBook(TICK, capacity=LEVELS)
        book.apply_batch(events)
        return book

    benchmark.extra_info["elements"] = LEVELS
    book = benchmark.pedantic(run, rounds=3, warmup_rounds=0)
    assert book.level_count(side) == LEVELS
    best = events["price"].max() if side == Side.BUY else events["price"].min()
    assert book.bbo()[0 if side == Side.BUY else 1] == best


def test_book_deep_levels_restore(benchmark: Any) -> None:
    book = OrderBook(TICK)
    book.apply_batch(deep_adds(Side.BUY, False, LEVELS // 2))
    book.apply_batch(deep_adds(Side.SELL, True, LEVELS // 2))
    snapshot = book.snapshot()

    def run() -> OrderBook:
        fresh = OrderBook(TICK, capacity=LEVELS)
        fresh.restore(snapshot)
        return fresh

    benchmark.extra_info["elements"] = len(snapshot)
    restored = benchmark.pedantic(run, rounds=3, warmup_rounds=0)
    assert np.array_equal(restored.snapshot(), snapshot)
