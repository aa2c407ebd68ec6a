"""Order book figures through Python (run by `make bench`; disabled in the test run).

The same LOBSTER-like stream as the criterion bench `book/replay_lobster_like`
(`admf.book.lobster_like`), applied in one batch call, one call per message, and by a
plain-Python dict-of-deques book for the ratio; plus best bid + ask reads.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pytest

from admf import Kind, OrderBook
from admf.book import lobster_like
from admf.data.lobster import TICK

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
