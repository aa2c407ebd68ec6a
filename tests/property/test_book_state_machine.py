"""The Rust order book against a pure-Python reference book (tests/property/reference_book.py):
the same random operations on both, compared after every step."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from admf import BookError, Flag, Kind, OrderBook

_spec = importlib.util.spec_from_file_location(
    "admf_tests_reference_book", Path(__file__).with_name("reference_book.py")
)
assert _spec is not None
assert _spec.loader is not None
ref_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ref_module
_spec.loader.exec_module(ref_module)
ReferenceBook, RefError = ref_module.ReferenceBook, ref_module.RefError

TICK = 5
ids = st.integers(1, 12)
sides = st.sampled_from([1, 2])
# Mostly on the tick, sometimes off it; a narrow band so that orders meet.
prices = st.one_of(st.integers(18, 26).map(lambda t: t * TICK), st.just(101))
sizes = st.one_of(st.integers(1, 12), st.integers(-1, 0))
# Resting prices: bids low and asks high, overlapping a little so that some adds cross.
bid_prices = st.integers(17, 22).map(lambda t: t * TICK)
ask_prices = st.integers(21, 26).map(lambda t: t * TICK)


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook(TICK)
        self.ref = ReferenceBook(TICK)
        self.next_taker = 1000

    def both(self, rust: Any, ref: Any) -> Any:
        """Runs an operation on both books: both succeed with the same result or both
        refuse it."""
        try:
            want = ref()
        except RefError:
            try:
                rust()
            except BookError:
                return None
            raise AssertionError("the Rust book accepted what the reference refused") from None
        got = rust()
        assert got == want
        return got

    @rule(oid=ids, side=sides, price=prices, qty=sizes)
    def add(self, oid: int, side: int, price: int, qty: int) -> None:
        self.both(
            lambda: self.book.add(oid, side, price, qty),
            lambda: self.ref.add(oid, side, price, qty),
        )

    @rule(oid=ids, price=bid_prices, qty=st.integers(1, 9))
    def add_bid(self, oid: int, price: int, qty: int) -> None:
        self.add(oid, 1, price, qty)

    @rule(oid=ids, price=ask_prices, qty=st.integers(1, 9))
    def add_ask(self, oid: int, price: int, qty: int) -> None:
        self.add(oid, 2, price, qty)

    @rule(oid=ids)
    def cancel(self, oid: int) -> None:
        self.both(lambda: self.book.cancel(oid), lambda: self.ref.cancel(oid))

    @rule(oid=ids, qty=sizes)
    def reduce(self, oid: int, qty: int) -> None:
        self.both(lambda: self.book.reduce(oid, qty), lambda: self.ref.reduce(oid, qty))

    @rule(oid=ids, qty=sizes)
    def execute(self, oid: int, qty: int) -> None:
        self.both(lambda: self.book.execute(oid, qty), lambda: self.ref.execute(oid, qty))

    @rule(oid=ids, price=prices, qty=sizes)
    def modify(self, oid: int, price: int, qty: int) -> None:
        self.both(
            lambda: self.book.modify(oid, price, qty), lambda: self.ref.modify(oid, price, qty)
        )

    @rule(data=st.data(), change=st.sampled_from([-2, -1, 1, 2]))
    def resize(self, data: st.DataObject, change: int) -> None:
        """A modify of a resting order at the same price: smaller keeps priority, larger
        loses it."""
        resting = sorted(self.ref.orders)
        if resting:
            oid = data.draw(st.sampled_from(resting))
            _, price, qty, _ = self.book.order(oid)  # type: ignore[misc]
            self.modify(oid, price, qty + change)

    @rule(side=sides, price=prices, qty=sizes)
    def add_anonymous(self, side: int, price: int, qty: int) -> None:
        self.both(
            lambda: self.book.add_anonymous(side, price, qty),
            lambda: self.ref.add_anonymous(side, price, qty),
        )

    @rule(
        side=sides,
        price=prices,
        qty=sizes,
        kind=st.sampled_from([Kind.BOOK_CANCEL, Kind.BOOK_EXECUTE]),
    )
    def unknown_order_delta(self, side: int, price: int, qty: int, kind: Kind) -> None:
        self.both(
            lambda: self.book.apply_delta(kind, 999, side, price, qty),
            lambda: self.ref.reduce_anonymous(side, price, qty),
        )

    @rule(side=st.sampled_from([0, 1, 2]), data=st.data())
    def clear(self, side: int, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 9)) == 0:  # rarely: it empties the book
            self.book.clear(side)
            self.ref.clear(side)

    @rule(
        side=sides,
        price=prices,
        qty=sizes,
        order_type=st.sampled_from(["limit", "market", "ioc", "fok", "post_only"]),
    )
    def submit(self, side: int, price: int, qty: int, order_type: str) -> None:
        oid = self.next_taker
        self.next_taker += 1

        def rust() -> tuple[str, int, int, list[tuple[int, int, int, int, bool]]]:
            r = self.book.submit(
                oid,
                side,
                qty,
                price,
                market=order_type == "market",
                tif="IOC" if order_type == "ioc" else "FOK" if order_type == "fok" else "GTC",
                post_only=order_type == "post_only",
            )
            fills = [
                (
                    int(f["order_id"]),
                    int(f["payload"]),
                    int(f["price"]),
                    int(f["qty"]),
                    bool(int(f["flags"]) & Flag.AGGRESSOR),
                )
                for f in r.fills
            ]
            assert all(int(k) == Kind.FILL for k in r.fills["kind"])
            return r.status, r.filled, r.remaining, fills

        self.both(rust, lambda: self.ref.submit(oid, side, price, qty, order_type))

    @invariant()
    def books_agree(self) -> None:
        for side in (1, 2):
            depth = self.book.depth(side, 1000)
            assert depth == self.ref.depth(side)
            for price, _, _ in depth:
                assert self.book.queue(side, price) == self.ref.queue(side, price)
                assert self.book.anonymous_at(side, price) == self.ref.anon[side].get(price, 0)
        assert len(self.book) == len(self.ref.orders)
        bid, ask = self.book.bbo()
        assert (bid, ask) == (self.ref.best(1), self.ref.best(2))
        assert bid is None or ask is None or bid < ask
        self.book.check_invariants()


BookMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_book_state_machine = BookMachine.TestCase
