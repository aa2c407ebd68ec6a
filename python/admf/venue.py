"""The simulated venue for bar data, with its fill conventions, fee and slippage models.

The engine runs this venue in Rust inside the kernel (``rust/src/orders/bar_venue.rs``);
`BarVenue` here is the same rules in Python, run when a stage of the order pipeline is
replaced by a plugin (see `admf.pipeline`), and filling exactly as the Rust one.

Fill conventions (settable, stated here because results depend on them):

- ``fill_at="next_open"`` (the default): an order decided on bar *t* is filled at the open
  of the next bar *t+1* of its instrument. Market orders fill at that open, moved against
  the order by the slippage model; a buy limit fills if the bar trades at or below the limit,
  at the open if the open is already better, else at the limit (sells mirrored). An IOC or
  FOK limit that does not fill on that bar expires.
- ``fill_at="close"``: an order is filled at the close of the bar it was decided on (the
  bar the strategy just saw): the "cheat on close" convention.
- An order with ``qty=0`` and a ``value`` (``aux``) is sized when it fills: the most whole
  lots whose cost *with fees* fits in ``value`` (and, for a buy, in the cash) at the fill
  price; none affordable: rejected.
- Cash never goes negative: a fill whose cost plus fees exceeds the cash is refused
  (``ORDER_REJECTED`` with the amounts in its reason); value-sized orders are sized down to
  fit instead (the rule above). Sells (short sales included) are not limited by cash.
- Fees: ``FeeModel`` (a rate on the notional, per unit, and a minimum per fill) in ``aux`` of
  the fill; the portfolio pays them from cash.
- Quantities are multiples of the instrument's lot size and limit prices of its tick
  (``Instruments``); ``ctx.submit`` refuses others with an ``AdmfError`` naming the value.

Quotes, trades and book data use the order book's simulated venue instead (queue position and
latency); see ``admf.book``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from admf._core import Event
from admf.errors import AdmfError
from admf.events import (
    BUY,
    F_AGGRESSOR,
    F_IOC_FOK,
    F_MARKET,
    F_OWN,
    K_FILL,
    K_ORDER_ACCEPTED,
    K_ORDER_CANCEL,
    K_ORDER_CANCELED,
    K_ORDER_EXPIRED,
    K_ORDER_MODIFIED,
    K_ORDER_MODIFY,
    K_ORDER_REJECTED,
    SCALE,
    Kind,
)
from admf.portfolio import Portfolio, notional, units_text

if TYPE_CHECKING:
    from admf.book import SimVenue
    from admf.kernel import Kernel

FILL_AT: Final = ("next_open", "close")
"""The bar venue's fill conventions (see the module docstring)."""


@dataclasses.dataclass(frozen=True)
class Instruments:
    """Lot size and tick of each instrument, fixed point: ``lot`` and ``tick`` for every
    instrument, with ``ticks`` overriding the tick of some (book data brings its own)."""

    lot: int = SCALE
    tick: int = 1
    ticks: dict[int, int] = dataclasses.field(default_factory=dict)

    def check(self, instrument: int, qty: int, price: int | None) -> None:
        """Raises an `AdmfError` naming a quantity that is not a positive multiple of the lot
        size, or a price that is not a positive multiple of the tick."""
        if qty < 0 or qty % self.lot:
            raise AdmfError(
                f"order qty {units_text(qty)} of instrument {instrument} is not a positive "
                f"multiple of its lot size {units_text(self.lot)}"
            )
        if price is not None:
            tick = self.ticks.get(instrument, self.tick)
            if price <= 0 or price % tick:
                raise AdmfError(
                    f"order price {units_text(price)} of instrument {instrument} is not a "
                    f"positive multiple of its tick {units_text(tick)}"
                )


@dataclasses.dataclass(frozen=True)
class FeeModel:
    """Fees per fill: ``rate`` of the notional (0.001 = 10 bp), ``per_unit`` per unit traded
    and at least ``minimum``, all in currency units."""

    rate: float = 0.0
    per_unit: float = 0.0
    minimum: float = 0.0

    def fee(self, price: int, qty: int) -> int:
        value = notional(price, qty)
        fee = round(value * self.rate) + notional(round(self.per_unit * SCALE), qty)
        return max(fee, round(self.minimum * SCALE)) if qty else 0

    def affordable(self, price: int, budget: int, lot: int) -> int:
        """The largest multiple of ``lot`` whose notional at ``price`` plus its fee is at most
        ``budget`` (0 if not even one lot is)."""
        if price <= 0 or budget <= 0:
            return 0
        qty = budget * SCALE // price // lot * lot
        # The fee grows with the quantity: step down from the fee-less size (a few lots).
        while qty > 0 and notional(price, qty) + self.fee(price, qty) > budget:
            over = notional(price, qty) + self.fee(price, qty) - budget
            qty -= max(lot, (over * SCALE // price) // lot * lot)
        return max(qty, 0)


@dataclasses.dataclass(frozen=True)
class SlippageModel:
    """Moves market fills against the order by ``bps`` basis points of the price."""

    bps: float = 0.0

    def adjust(self, price: int, side: int) -> int:
        if not self.bps:
            return price
        move = round(price * self.bps / 10_000)
        return price + move if side == BUY else price - move


class BarVenue:
    """Matches orders against bars (see the module docstring for the conventions)."""

    name = "execution"

    def __init__(
        self,
        kernel: Kernel,
        portfolio: Portfolio,
        fees: FeeModel | None = None,
        slippage: SlippageModel | None = None,
        fill_at: str = "next_open",
        lot: int = SCALE,
    ) -> None:
        if fill_at not in FILL_AT:
            raise AdmfError(f"fill_at must be one of {', '.join(FILL_AT)}, got {fill_at!r}")
        self.kernel = kernel
        self.portfolio = portfolio
        self.lot = lot
        self.fees = fees or FeeModel()
        self.slippage = slippage or SlippageModel()
        self.fill_at = fill_at
        # Insertion-ordered: orders fill in the order they arrived.
        self.pending: dict[int, Event] = {}
        # Bars reach the venue only while it holds orders (see `Kernel.subscribe`).
        self.bars = kernel.subscribe(Kind.BAR, self.on_bar, "venue.on_bar", active=False)
        self._idle = 0

    # -- the pipeline's execution stage -------------------------------------------------

    def process(self, order: Event, kernel: Kernel) -> bool:
        if order.kind == K_ORDER_CANCEL:
            target = self.pending.pop(order.order_id, None)
            if target is None:
                self._report(K_ORDER_REJECTED, order, "cancel of an order that is not open")
            else:
                self._report(K_ORDER_CANCELED, target)
            return True
        if order.kind == K_ORDER_MODIFY:
            target = self.pending.get(order.order_id)
            if target is None:
                self._report(K_ORDER_REJECTED, order, "modify of an order that is not open")
                return True
            self.pending[order.order_id] = target.replace(price=order.price_fx, qty=order.qty_fx)
            self._report(K_ORDER_MODIFIED, self.pending[order.order_id])
            return True
        self._report(K_ORDER_ACCEPTED, order)
        if self.fill_at == "close":
            close = self.kernel.core.last_price(order.instrument)
            if close is None:
                self._report(K_ORDER_REJECTED, order, "no bar yet to fill at its close")
                return True
            self._try_fill(order, close, close, close, at_open=False)
        else:
            self.pending[order.order_id] = order
        if self.pending:
            self._idle = 0
            self.bars.active = True
        return True

    # -- market data ----------------------------------------------------------------------

    def on_bar(self, bar: Event) -> None:
        """Fills what is pending on this bar's instrument (before strategies see the bar)."""
        if self.pending:
            self._idle = 0
            for order in [o for o in self.pending.values() if o.instrument == bar.instrument]:
                del self.pending[order.order_id]
                self._try_fill(order, bar.open_fx, bar.high_fx, bar.low_fx, at_open=True)
        else:
            # Stop listening after a quiet spell, not at once: a strategy that trades often
            # would otherwise switch the subscription twice per order.
            self._idle += 1
            if self._idle >= 8:
                self.bars.active = False

    def _try_fill(self, order: Event, open_: int, high: int, low: int, *, at_open: bool) -> None:
        buy = order.side == BUY
        flags = order.flags
        limit = order.price_fx
        if flags & F_MARKET:
            price = self.slippage.adjust(open_, order.side)
        elif buy and low <= limit:
            price = min(open_, limit)
        elif not buy and high >= limit:
            price = max(open_, limit)
        elif flags & F_IOC_FOK:
            self._report(K_ORDER_EXPIRED, order, "limit not reached on the next bar")
            return
        else:
            self.pending[order.order_id] = order  # rests until a bar reaches the limit
            return
        qty = order.qty_fx
        cash = self.portfolio.cash_fx
        if qty == 0:
            budget = min(order.aux, cash) if buy else order.aux
            qty = self.fees.affordable(price, budget, self.lot)
            if qty == 0:
                self._report(K_ORDER_REJECTED, order, "value buys no whole lot (fees included)")
                return
        fee = self.fees.fee(price, qty)
        cost = notional(price, qty)
        after = cash - cost - fee if buy else cash + cost - fee
        if after < 0 and after < cash:  # a sell that brings cash up is never refused
            self._report(
                K_ORDER_REJECTED,
                order,
                f"insufficient cash: {'buying' if buy else 'selling'} {units_text(qty)} at "
                f"{units_text(price)} leaves {after / SCALE:.2f} after fees "
                f"(cash {cash / SCALE:.2f})",
            )
            return
        fill = self.kernel.emit(
            Event(
                K_FILL,
                0,
                instrument=order.instrument,
                order_id=order.order_id,
                side=order.side,
                price=price,
                qty=qty,
                aux=fee,
                flags=F_OWN | (F_AGGRESSOR if flags & F_MARKET else 0),
            )
        )
        # Folded at once, so that the next order on this bar sees the cash this one left (the
        # kernel's FILL subscription skips it later).
        self.portfolio.apply(fill)

    def _report(self, kind: int, order: Event, reason: str | None = None) -> None:
        self.kernel.emit(order.as_kind(kind), payload=reason)


class BookVenue:
    """The execution stage for instruments with an order book (LOBSTER, Databento MBO): the
    order book's simulated venue (``admf.SimVenue``), attached to the kernel so that market
    deltas reach it in Rust, one call per delta with no Python in between. Own orders keep
    their queue position; latency and maker/taker fees are the venue's (see ``admf.book``).
    The venue's answers reach the strategy when the kernel clock reaches their time."""

    name = "execution"

    def __init__(self, kernel: Kernel, venues: dict[int, SimVenue]) -> None:
        self.kernel = kernel
        self.venues = venues
        for instrument, venue in sorted(venues.items()):
            kernel.core.attach_venue(instrument, venue)
        kernel.subscribe(Kind.ERROR, self._on_error, "venue.errors")
        # The venue's messages, by the seq of the delta they are about, until their ERROR
        # event is dispatched.
        self._messages: dict[int, str] = {}

    def process(self, order: Event, kernel: Kernel) -> bool:
        try:
            kernel.core.venue_submit(order)
        except ValueError as exc:
            kernel.emit(order.as_kind(K_ORDER_REJECTED), payload=str(exc))
        return True

    def _on_error(self, event: Event) -> None:
        # A market delta the venue could not apply: its message becomes the ERROR event's
        # payload (the record was flagged HAS_PAYLOAD in Rust).
        self._messages.update(self.kernel.core.take_venue_errors())
        message = self._messages.pop(event.order_id, None)
        if message is not None:
            payload = {"venue": message, "event_seq": event.order_id}
            self.kernel.attach_payload(event.seq, payload)


class ExecutionRouter:
    """The execution stage of a run with several venues: each order goes to the venue of its
    instrument (the book venue for book data, the bar venue otherwise)."""

    name = "execution"

    def __init__(self, by_instrument: dict[int, BookVenue], default: BarVenue) -> None:
        self.by_instrument = by_instrument
        self.default = default

    def process(self, order: Event, kernel: Kernel) -> bool:
        venue = self.by_instrument.get(order.instrument)
        if venue is not None:
            return venue.process(order, kernel)
        return self.default.process(order, kernel)
