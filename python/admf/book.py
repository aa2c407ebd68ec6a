"""``OrderBook`` and ``SimVenue``: the L3 order book, its matching engine and the simulated
venue, all in Rust (``rust/src/book.rs``).

The one-message methods (``add``, ``cancel``, ``reduce``, ``execute``, ``modify``,
``apply_delta``, ``bbo``, ``best_bid`` ...) are the compiled methods themselves, so driving
the book one call per message costs one call into Rust. Batches of deltas (a numpy
``EVENT_DTYPE`` array or an Arrow batch of ``EVENT_SCHEMA``) are applied in one call that
stays in Rust. Every refused operation raises ``BookError`` (a ``ValueError``) naming the
order and the reason, and leaves the book unchanged.

Prices and sizes are fixed-point integers (``admf.SCALE`` units per whole); sides are
``Side.BUY`` (1) and ``Side.SELL`` (2).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pyarrow as pa

from admf import _core
from admf._core import BookError, Event
from admf.events import (
    EVENT_DTYPE,
    EventArray,
    Flag,
    Kind,
    arrow_columns,
    check_event_array,
)

__all__ = ["BookError", "OrderBook", "SimVenue", "SubmitResult", "lobster_like"]

_TIF_FLAGS = {"GTC": 0, "IOC": int(Flag.IOC), "FOK": int(Flag.FOK)}


def _events(data: bytes) -> EventArray:
    return np.frombuffer(data, dtype=EVENT_DTYPE).copy()


def _order_event(
    order_id: int,
    side: int,
    qty: int,
    price: int,
    ts: int,
    market: bool,
    tif: str,
    post_only: bool,
    own: bool,
    kind: Kind = Kind.ORDER_SUBMIT,
) -> Event:
    if tif not in _TIF_FLAGS:
        raise ValueError(f"tif must be one of GTC, IOC, FOK, got {tif!r}")
    flags = _TIF_FLAGS[tif]
    if market:
        flags |= Flag.MARKET
    if post_only:
        flags |= Flag.POST_ONLY
    if own:
        flags |= Flag.OWN
    return Event(kind, ts, order_id=order_id, side=side, price=price, qty=qty, flags=int(flags))


def lobster_like(n: int, seed: int = 42) -> EventArray:
    """``n`` book deltas of a deterministic LOBSTER-like day (47% adds near the touch, 37%
    cancels, 16% executions of the oldest order at the best price; a few thousand orders
    resting; one-cent tick ``SCALE // 100``): the stream the benchmarks replay, natively and
    through Python."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    return _events(_core._lobster_like(n, seed))


class SubmitResult(NamedTuple):
    """What became of an order submitted to ``OrderBook.submit``."""

    status: Literal["filled", "resting", "canceled", "rejected"]
    filled: int
    remaining: int
    fills: EventArray
    """``Kind.FILL`` records: price, qty, aux = fee, order_id = the filled order, payload =
    the contra order (0: anonymous size); the taker's records carry ``Flag.AGGRESSOR``."""


class OrderBook(_core.OrderBook):
    """An L3 limit order book with price-time priority and an L2 view.

    ``OrderBook(tick=1, instrument=0, *, maker_fee=0, taker_fee=0, capacity=0)``: prices
    must be multiples of ``tick`` (fixed point); fees are fixed-point rates used by
    ``submit``; ``capacity`` reserves room for that many resting orders (a replay then never
    grows its tables).

    Market data: ``add``, ``cancel``, ``reduce`` (keeps priority), ``modify`` (a new price or
    a larger size loses priority), ``execute``, ``clear``, ``apply(event)``,
    ``apply_delta(kind, ...)`` and ``apply_batch(events)``. A level may carry anonymous size
    (``add_anonymous``; a ``BOOK_ADD`` with order id 0) belonging to no known order, as after
    seeding from a snapshot; cancels and executions of unknown order ids reduce it.

    Views: ``bbo()`` (best bid and ask prices in one call), ``best_bid()``, ``best_ask()``,
    ``depth(side, n)``, ``size_at``, ``orders_at``, ``queue`` (a level in time order),
    ``order(id)``, ``snapshot()`` / ``restore()``.

    Matching: ``submit`` matches market, limit, IOC, FOK and post-only orders against the
    book in price-time order and returns the fills.
    """

    def apply_batch(self, batch: EventArray | pa.RecordBatch | pa.Table) -> int:
        """Applies a batch of book deltas in order, in one call into Rust; returns how many.
        On a refused delta raises ``BookError`` naming its index; the deltas before it stay
        applied, that one is not."""
        if isinstance(batch, pa.Table):
            return sum(self.apply_batch(part) for part in batch.to_batches())
        if isinstance(batch, pa.RecordBatch):
            c = dict(zip(batch.schema.names, arrow_columns(batch), strict=True))
            return self._apply_columns(
                c["ts"],
                c["order_id"],
                c["price"],
                c["qty"],
                c["kind"],
                c["side"],
                c["flags"],
            )
        return self._apply_bytes(check_event_array(batch).view(np.uint8))

    def snapshot(self) -> EventArray:
        """The whole book as ``BOOK_ADD`` records flagged ``SNAPSHOT``: bids best first, then
        asks; per level its anonymous size (order id 0) first, then its orders in time
        order."""
        return _events(self._snapshot_bytes())

    def restore(self, snapshot: EventArray) -> None:
        """Replaces the book's content with a snapshot's (unchanged if it is refused)."""
        self._restore_bytes(check_event_array(snapshot).view(np.uint8))

    def submit(
        self,
        order_id: int,
        side: int,
        qty: int,
        price: int = 0,
        *,
        ts: int = 0,
        market: bool = False,
        tif: Literal["GTC", "IOC", "FOK"] = "GTC",
        post_only: bool = False,
        own: bool = False,
    ) -> SubmitResult:
        """Matches an order against the book. A limit order's rest rests (``GTC``) or is
        canceled (``IOC``; market orders); ``FOK`` fills completely or not at all; a
        post-only order that would take liquidity is rejected. Invalid orders raise
        ``BookError``."""
        event = _order_event(order_id, side, qty, price, ts, market, tif, post_only, own)
        status, filled, remaining, fills = self._submit(event)
        return SubmitResult(status, filled, remaining, _events(fills))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        bid, ask = self.bbo()
        return f"<OrderBook {len(self)} orders, bid {bid}, ask {ask}>"


class SimVenue(_core.SimVenue):
    """The simulated venue of a backtest: the market's book driven by data plus our own
    orders, which never change it.

    ``SimVenue(tick=1, instrument=0, *, maker_fee=0, taker_fee=0, latency_to_venue=0,
    latency_to_strategy=0)`` (fees as fixed-point rates, latencies in ns).

    Market data is L3 book deltas or L1 quotes (``takes(kind)``): a quote replaces the book
    with its bid and ask (a side without size shows a billion units); trades do not move
    it. Own resting orders keep a queue position: the market size ahead of them must trade or
    cancel first. Commands reach the venue ``latency_to_venue`` after their ``ts`` and are
    handled when the venue's clock (the latest market delta, or ``advance``) gets there;
    answers (``ORDER_ACCEPTED``, ``ORDER_REJECTED`` with the reason code in ``aux``,
    ``ORDER_CANCELED``, ``ORDER_EXPIRED``, ``ORDER_MODIFIED``, ``FILL`` flagged ``OWN``, and
    ``AGGRESSOR`` when taking) are stamped ``latency_to_strategy`` later.
    """

    def send(self, command: Event) -> EventArray:
        """Sends an ``ORDER_SUBMIT``, ``ORDER_CANCEL`` or ``ORDER_MODIFY`` record; returns
        the answers already due."""
        return _events(self._submit(command))

    def submit_order(
        self,
        order_id: int,
        side: int,
        qty: int,
        price: int = 0,
        *,
        ts: int = 0,
        market: bool = False,
        tif: Literal["GTC", "IOC", "FOK"] = "GTC",
        post_only: bool = False,
    ) -> EventArray:
        """Sends a new own order; returns the answers already due."""
        return self.send(
            _order_event(order_id, side, qty, price, ts, market, tif, post_only, own=True)
        )

    def cancel_order(self, order_id: int, *, ts: int = 0) -> EventArray:
        """Sends a cancel of an own order; returns the answers already due."""
        return self.send(Event(Kind.ORDER_CANCEL, ts, order_id=order_id, flags=int(Flag.OWN)))

    def modify_order(self, order_id: int, price: int, qty: int, *, ts: int = 0) -> EventArray:
        """Sends a new price and size for an own order (a smaller size at the same price keeps
        its queue position); returns the answers already due."""
        return self.send(
            Event(
                Kind.ORDER_MODIFY,
                ts,
                order_id=order_id,
                price=price,
                qty=qty,
                flags=int(Flag.OWN),
            )
        )

    def advance(self, ts: int) -> EventArray:
        """Moves the venue's clock to ``ts``; returns the answers of commands handled."""
        return _events(self._advance(ts))

    def on_market(self, data: Event | EventArray) -> EventArray:
        """Applies market data (one record or an array of book deltas and quotes, see
        ``takes``; a quote replaces the book whole) and returns what it means for own orders
        (their fills, and answers to commands that arrived meanwhile)."""
        if isinstance(data, Event):
            raw = np.frombuffer(data.to_bytes(), dtype=np.uint8)
        else:
            raw = check_event_array(data).view(np.uint8)
        return _events(self._on_market_bytes(raw))

    def __repr__(self) -> str:
        bid, ask = self.bbo()
        return f"<SimVenue {len(self.open_orders())} own orders, bid {bid}, ask {ask}>"
