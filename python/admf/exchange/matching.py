"""Matching: what happens to an order when the market moves.

Two engines, chosen by the data of the order's symbol:

- **Book data** (quotes, LOBSTER, Databento MBO): the Rust simulated venue ``admf.SimVenue``
  keeps the market's book and our orders. An order marketable against the book fills at the
  book's prices, level by level in price-time order; a resting order keeps its queue
  position and fills when the data shows an aggressor reached it (see ``admf.book``). A
  quote is the book's whole content: the venue replaces both sides with its bid and ask as
  anonymous size; a quote without sizes (TrueFX) shows unlimited size, as Alpaca paper does
  not check size against the NBBO (the venue's rule, ``SimVenue.takes``); trades do not
  move the book. Stop orders wait here until the touch reaches the stop
  (a buy when the ask is at or above it, a sell when the bid is at or below it), then enter
  the venue as market or limit orders. ``day`` orders expire when the data's UTC date
  changes.
- **Bars** (and trades, each a bar with open = high = low = close): the bar rule of
  ``admf.venue.BarVenue``: an order fills on the *next* bar of its symbol after it arrived;
  a market order at that bar's open, a buy limit when the bar trades at or below the limit
  (at the open if the open is better, else at the limit), sells mirrored. A stop triggers
  when the bar reaches the stop (at the open if the bar gapped through it) and then fills
  as a market order at that price, or, as a stop-limit, if that price satisfies the limit.
  ``ioc``/``fok`` orders that do not fill on that bar expire; ``opg`` fills at the next
  open or expires, ``cls`` at the next close or expires; a ``day`` order expires at the
  first bar of a later date. With ``partial_fill_rate`` > 0, a fill is partial with that
  probability, a seeded random number of whole units, the rest working on.

Both engines answer with ``Report`` records; the exchange applies them to orders and
accounts. Nothing here reads a wall clock or an unseeded random source.
"""

from __future__ import annotations

import dataclasses
import random
from typing import NamedTuple

import numpy as np

from admf.book import SimVenue
from admf.events import SCALE, EventArray, Kind, Side, empty_events
from admf.venue import FeeModel

DAY_NS = 86_400 * 1_000_000_000

_REJECT_REASONS = {
    1: "unknown order",
    2: "duplicate order",
    3: "quantity must be positive",
    4: "price is not a multiple of the tick",
    5: "invalid side",
    6: "post-only order would take liquidity",
}


class Report(NamedTuple):
    """What became of an order: a fill (price, qty, fee), or its end (expired, canceled,
    rejected) with the reason."""

    kind: Kind
    venue_id: int
    price: int = 0
    qty: int = 0
    fee: int = 0
    reason: str | None = None


@dataclasses.dataclass
class Working:
    """An order as the matching engine sees it."""

    venue_id: int
    side: Side
    type: str
    tif: str
    qty: int
    """Remaining size; 0 for a notional order not yet sized."""
    notional: int
    limit: int
    stop: int
    triggered: bool = False
    session_day: int | None = None


def _crosses_limit(w: Working, price: int) -> bool:
    return price <= w.limit if w.side == Side.BUY else price >= w.limit


class BarMatcher:
    """The bar rule (see the module docstring) for one symbol."""

    def __init__(self, fees: FeeModel, rng: random.Random, partial_fill_rate: float) -> None:
        self.fees = fees
        self.rng = rng
        self.partial_fill_rate = partial_fill_rate
        self.working: dict[int, Working] = {}  # insertion order: arrival order

    def submit(self, w: Working) -> list[Report]:
        self.working[w.venue_id] = w
        return []

    def cancel(self, venue_id: int) -> bool:
        return self.working.pop(venue_id, None) is not None

    def on_market(self, event: np.void) -> list[Report]:
        kind = int(event["kind"])
        if kind == Kind.BAR:
            o, h, lo, c = (int(event[f]) for f in ("aux", "order_id", "payload", "price"))
        elif kind == Kind.TRADE:
            o = h = lo = c = int(event["price"])
        else:
            return []
        day = int(event["ts"]) // DAY_NS
        reports: list[Report] = []
        for w in list(self.working.values()):
            reports.extend(self._on_bar(w, o, h, lo, c, day))
        return reports

    def _on_bar(self, w: Working, o: int, h: int, lo: int, c: int, day: int) -> list[Report]:
        if w.tif == "day":
            if w.session_day is None:
                w.session_day = day
            elif day != w.session_day:
                return self._end(w, Kind.ORDER_EXPIRED, "day order expired at the session's end")
        price: int | None = None
        if w.tif == "cls":
            price = c if w.type == "market" or _crosses_limit(w, c) else None
        elif w.tif == "opg":
            price = o if w.type == "market" or _crosses_limit(w, o) else None
        elif w.type in ("stop", "stop_limit") and not w.triggered:
            hit = h >= w.stop if w.side == Side.BUY else lo <= w.stop
            if hit:
                w.triggered = True
                trigger = max(o, w.stop) if w.side == Side.BUY else min(o, w.stop)
                if w.type == "stop" or _crosses_limit(w, trigger):
                    price = trigger
        elif w.type in ("market", "stop"):
            price = o
        elif w.side == Side.BUY and lo <= w.limit:
            price = min(o, w.limit)
        elif w.side == Side.SELL and h >= w.limit:
            price = max(o, w.limit)
        if price is None:
            if w.tif in ("ioc", "fok", "opg", "cls"):
                return self._end(w, Kind.ORDER_EXPIRED, "not filled on the next bar")
            return []
        qty = w.qty
        if qty == 0:  # a notional order: sized at the fill price
            qty = w.notional * SCALE // price if price > 0 else 0
            if qty <= 0:
                return self._end(w, Kind.ORDER_REJECTED, "notional buys nothing at the price")
            w.qty = qty
        if (
            self.partial_fill_rate
            and w.tif != "fok"
            and qty > SCALE
            and self.rng.random() < self.partial_fill_rate
        ):
            qty = self.rng.randint(1, qty // SCALE - (qty % SCALE == 0)) * SCALE
        w.qty -= qty
        fill = Report(Kind.FILL, w.venue_id, price, qty, self.fees.fee(price, qty))
        if w.qty == 0:
            del self.working[w.venue_id]
            return [fill]
        if w.tif in ("ioc", "opg", "cls"):
            return [fill, *self._end(w, Kind.ORDER_EXPIRED, "rest not filled on the bar")]
        return [fill]

    def _end(self, w: Working, kind: Kind, reason: str) -> list[Report]:
        self.working.pop(w.venue_id, None)
        return [Report(kind, w.venue_id, reason=reason)]


class BookMatcher:
    """Orders on the Rust simulated venue for one symbol with book or quote data."""

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        self.stops: dict[int, Working] = {}
        self.day_orders: dict[int, Working] = {}
        self.working: dict[int, Working] = {}
        self.day: int | None = None
        self.now = 0

    def submit(self, w: Working) -> list[Report]:
        self.working[w.venue_id] = w
        if w.tif == "day":
            self.day_orders[w.venue_id] = w
        if w.type in ("stop", "stop_limit"):
            self.stops[w.venue_id] = w
            return self._check_stops()
        return self._send(w)

    def _send(self, w: Working) -> list[Report]:
        tif = {"ioc": "IOC", "fok": "FOK"}.get(w.tif, "GTC")
        market = w.type in ("market", "stop")
        qty = w.qty
        if qty == 0:
            bid, ask = self.venue.bbo()
            ref = ask if w.side == Side.BUY else bid
            if not ref:
                return self._end(w.venue_id, Kind.ORDER_REJECTED, "no quote to size it at")
            qty = w.notional * SCALE // ref
            w.qty = qty
        answers = self.venue.submit_order(
            w.venue_id,
            int(w.side),
            qty,
            0 if market else w.limit,
            ts=max(self.now, self.venue.now),
            market=market,
            tif=tif,  # type: ignore[arg-type]
        )
        return self._reports(answers)

    def cancel(self, venue_id: int) -> bool:
        if venue_id not in self.working:
            return False
        self.working.pop(venue_id)
        self.day_orders.pop(venue_id, None)
        if self.stops.pop(venue_id, None) is None:
            self.venue.cancel_order(venue_id, ts=max(self.now, self.venue.now))
        return True

    def on_market(self, event: np.void) -> list[Report]:
        ts = int(event["ts"])
        self.now = ts
        reports: list[Report] = []
        day = ts // DAY_NS
        if self.day is not None and day != self.day and self.day_orders:
            for w in list(self.day_orders.values()):
                self.cancel(w.venue_id)
                reports.append(Report(Kind.ORDER_EXPIRED, w.venue_id, reason="day order expired"))
        self.day = day
        if SimVenue.takes(int(event["kind"])):
            data = empty_events(1)
            data[0] = event
            reports.extend(self._reports(self.venue.on_market(data)))
        if self.stops:
            reports.extend(self._check_stops())
        return reports

    def _check_stops(self) -> list[Report]:
        bid, ask = self.venue.bbo()
        reports: list[Report] = []
        for w in list(self.stops.values()):
            hit = (
                (ask is not None and ask >= w.stop)
                if w.side == Side.BUY
                else (bid is not None and bid <= w.stop)
            )
            if hit:
                del self.stops[w.venue_id]
                w.triggered = True
                reports.extend(self._send(w))
        return reports

    def _forget(self, venue_id: int) -> None:
        self.working.pop(venue_id, None)
        self.day_orders.pop(venue_id, None)
        self.stops.pop(venue_id, None)

    def _end(self, venue_id: int, kind: Kind, reason: str) -> list[Report]:
        self._forget(venue_id)
        return [Report(kind, venue_id, reason=reason)]

    def _reports(self, answers: EventArray) -> list[Report]:
        reports: list[Report] = []
        for a in answers:
            kind, vid = int(a["kind"]), int(a["order_id"])
            if kind == Kind.FILL:
                reports.append(
                    Report(Kind.FILL, vid, int(a["price"]), int(a["qty"]), int(a["aux"]))
                )
                w = self.working.get(vid)
                if w is not None:
                    w.qty -= int(a["qty"])
                    if w.qty <= 0:
                        self._forget(vid)
            elif kind == Kind.ORDER_EXPIRED:
                reports.extend(self._end(vid, Kind.ORDER_EXPIRED, "rest not marketable"))
            elif kind == Kind.ORDER_REJECTED:
                reason = _REJECT_REASONS.get(int(a["aux"]), f"venue reason {int(a['aux'])}")
                reports.extend(self._end(vid, Kind.ORDER_REJECTED, reason))
        return reports
