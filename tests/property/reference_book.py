"""A small pure-Python L3 order book with the same rules as admf.OrderBook: the reference
the hypothesis state machine compares the Rust book against. Clarity over speed: a dict of
price -> deque of order ids per side, anonymous size per level kept apart."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

BUY, SELL = 1, 2


class RefError(ValueError):
    """The reference refuses an operation (the Rust book must refuse it too)."""


@dataclass
class RefOrder:
    side: int
    price: int
    qty: int


@dataclass
class ReferenceBook:
    tick: int = 1
    orders: dict[int, RefOrder] = field(default_factory=dict)
    queues: dict[int, dict[int, deque[int]]] = field(default_factory=lambda: {BUY: {}, SELL: {}})
    anon: dict[int, dict[int, int]] = field(default_factory=lambda: {BUY: {}, SELL: {}})

    # -- views -----------------------------------------------------------------------------

    def prices(self, side: int) -> list[int]:
        """Prices with size, best first."""
        ps = set(self.queues[side]) | {p for p, q in self.anon[side].items() if q}
        return sorted(ps, reverse=side == BUY)

    def size_at(self, side: int, price: int) -> int:
        q = self.queues[side].get(price, deque())
        return self.anon[side].get(price, 0) + sum(self.orders[i].qty for i in q)

    def depth(self, side: int) -> list[tuple[int, int, int]]:
        return [
            (p, self.size_at(side, p), len(self.queues[side].get(p, ()))) for p in self.prices(side)
        ]

    def queue(self, side: int, price: int) -> list[tuple[int, int]]:
        return [(i, self.orders[i].qty) for i in self.queues[side].get(price, ())]

    def best(self, side: int) -> int | None:
        ps = self.prices(side)
        return ps[0] if ps else None

    # -- checks ----------------------------------------------------------------------------

    def _check(self, side: int, price: int, qty: int) -> None:
        if side not in (BUY, SELL):
            raise RefError("side")
        if qty <= 0:
            raise RefError("qty")
        if price % self.tick:
            raise RefError("tick")

    def _crosses(self, side: int, price: int) -> bool:
        other = self.best(SELL if side == BUY else BUY)
        if other is None:
            return False
        return price >= other if side == BUY else price <= other

    # -- market data -----------------------------------------------------------------------

    def add(self, oid: int, side: int, price: int, qty: int) -> None:
        self._check(side, price, qty)
        if self._crosses(side, price):
            raise RefError("crossing")
        if oid in self.orders:
            raise RefError("duplicate")
        self.orders[oid] = RefOrder(side, price, qty)
        self.queues[side].setdefault(price, deque()).append(oid)

    def _remove(self, oid: int) -> None:
        o = self.orders.pop(oid)
        q = self.queues[o.side][o.price]
        q.remove(oid)
        if not q:
            del self.queues[o.side][o.price]

    def _get(self, oid: int) -> RefOrder:
        if oid not in self.orders:
            raise RefError("unknown")
        return self.orders[oid]

    def reduce(self, oid: int, qty: int) -> int:
        if qty <= 0:
            raise RefError("qty")
        o = self._get(oid)
        if qty >= o.qty:
            self._remove(oid)
            return o.qty
        o.qty -= qty
        return qty

    def cancel(self, oid: int) -> int:
        o = self._get(oid)
        self._remove(oid)
        return o.qty

    def execute(self, oid: int, qty: int) -> int:
        if qty <= 0:
            raise RefError("qty")
        o = self._get(oid)
        if qty > o.qty:
            raise RefError("overfill")
        o.qty -= qty
        if o.qty == 0:
            self._remove(oid)
        return o.qty

    def modify(self, oid: int, price: int, qty: int) -> None:
        if qty <= 0:
            raise RefError("qty")
        if price % self.tick:
            raise RefError("tick")
        o = self._get(oid)
        if price == o.price and qty <= o.qty:
            o.qty = qty
            return
        if price != o.price and self._crosses(o.side, price):
            raise RefError("crossing")
        self._remove(oid)
        self.orders[oid] = RefOrder(o.side, price, qty)
        self.queues[o.side].setdefault(price, deque()).append(oid)

    def add_anonymous(self, side: int, price: int, qty: int) -> None:
        self._check(side, price, qty)
        if self._crosses(side, price):
            raise RefError("crossing")
        self.anon[side][price] = self.anon[side].get(price, 0) + qty

    def reduce_anonymous(self, side: int, price: int, qty: int) -> None:
        if side not in (BUY, SELL):
            raise RefError("side")
        if qty <= 0:
            raise RefError("qty")
        if self.anon[side].get(price, 0) < qty:
            raise RefError("unknown")
        self.anon[side][price] -= qty
        if not self.anon[side][price]:
            del self.anon[side][price]

    def clear(self, side: int) -> None:
        for s in (BUY, SELL) if side == 0 else (side,):
            for q in self.queues[s].values():
                for oid in q:
                    del self.orders[oid]
            self.queues[s] = {}
            self.anon[s] = {}

    # -- matching --------------------------------------------------------------------------

    def submit(
        self, oid: int, side: int, price: int, qty: int, order_type: str
    ) -> tuple[str, int, int, list[tuple[int, int, int, int, bool]]]:
        """order_type: limit, market, ioc, fok, post_only. Returns (status, filled,
        remaining, fills as (order_id, contra, price, qty, aggressor))."""
        market = order_type == "market"
        if side not in (BUY, SELL):
            raise RefError("side")
        if qty <= 0:
            raise RefError("qty")
        if not market and price % self.tick:
            raise RefError("tick")
        if oid in self.orders:
            raise RefError("duplicate")
        other = SELL if side == BUY else BUY

        def within(p: int) -> bool:
            return market or (p <= price if side == BUY else p >= price)

        best = self.best(other)
        if order_type == "post_only" and best is not None and within(best):
            return "rejected", 0, qty, []
        if order_type == "fok":
            available = sum(self.size_at(other, p) for p in self.prices(other) if within(p))
            if available < qty:
                return "canceled", 0, qty, []
        fills: list[tuple[int, int, int, int, bool]] = []
        remaining = qty
        for p in self.prices(other):
            if remaining == 0 or not within(p):
                break
            a = self.anon[other].get(p, 0)
            if a:
                q = min(a, remaining)
                remaining -= q
                self.anon[other][p] = a - q
                if not self.anon[other][p]:
                    del self.anon[other][p]
                fills.append((oid, 0, p, q, True))
            for maker in list(self.queues[other].get(p, ())):
                if remaining == 0:
                    break
                q = min(self.orders[maker].qty, remaining)
                remaining -= q
                fills.append((oid, maker, p, q, True))
                fills.append((maker, oid, p, q, False))
                self.execute(maker, q)
        if remaining == 0:
            return "filled", qty, 0, fills
        if order_type in ("limit", "post_only"):
            self.add(oid, side, price, remaining)
            return "resting", qty - remaining, remaining, fills
        return "canceled", qty - remaining, remaining, fills
