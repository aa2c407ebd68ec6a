"""Pre-trade risk: limits checked on every order before it reaches the venue.

The engine's own risk stage runs in Rust inside the kernel (``rust/src/orders/risk.rs``);
this class is the same rules in Python, run when a stage of the order pipeline is replaced
by a plugin (see `admf.pipeline`), and deciding exactly as the Rust one.

Every decision, allowed or denied, is a ``RISK`` event in the log: ``order_id`` and ``side``
of the order, ``aux`` the reason code (0 = allowed) and the reason in words as its payload.
A denied order goes no further; the strategy sees an ``ORDER_REJECTED`` report. Crossing the
daily loss limit trips the kill switch: every later order is denied.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from admf._core import Event
from admf.events import BUY, K_RISK, SCALE
from admf.portfolio import Portfolio, notional, units_text

if TYPE_CHECKING:
    from admf.kernel import Kernel

NS_PER_DAY = 86_400 * 1_000_000_000


class Reason(enum.IntEnum):
    """Reason codes of risk decisions (``aux`` of a ``RISK`` event)."""

    ALLOWED = 0
    MAX_ORDER_QTY = 1
    MAX_NOTIONAL = 2
    MAX_POSITION = 3
    ORDER_RATE = 4
    DAILY_LOSS = 5
    KILL_SWITCH = 6


@dataclasses.dataclass(frozen=True)
class RiskLimits:
    """Limits in whole units (converted to fixed point inside). None: no limit."""

    max_order_qty: float | None = None
    max_notional: float | None = None
    max_position: float | None = None
    max_orders_per_second: int | None = None
    daily_loss_limit: float | None = None
    kill_switch: bool = False


def _fixed(value: float | None) -> int | None:
    return None if value is None else round(value * SCALE)


class RiskEngine:
    """The risk stage of the order pipeline."""

    name = "risk"

    def __init__(
        self,
        limits: RiskLimits,
        portfolio: Portfolio,
        last_price: Callable[[int], int | None] | None = None,
    ) -> None:
        self.limits = limits
        self.portfolio = portfolio
        self.last_price = last_price or (lambda instrument: None)
        """The market's last price of an instrument (the kernel's), for value-sized orders."""
        self.killed = limits.kill_switch
        self._max_qty = _fixed(limits.max_order_qty)
        self._max_notional = _fixed(limits.max_notional)
        self._max_position = _fixed(limits.max_position)
        self._max_loss = _fixed(limits.daily_loss_limit)
        self._recent: deque[int] = deque()
        self._no_order_limits = (
            self._max_qty is None
            and self._max_notional is None
            and self._max_position is None
            and limits.max_orders_per_second is None
        )
        self._day: int | None = None
        self._day_start_equity = 0
        self._last_equity = 0

    def marked_equity(self) -> int:
        """Cash plus every position at the market's last price (fixed point)."""
        return self.portfolio.equity_fx()

    def check(self, order: Event, now: int) -> tuple[Reason, str]:
        """The decision on one order submit, with the reason in words."""
        if self.killed:
            return Reason.KILL_SWITCH, "kill switch is on: no new orders"
        if self._max_loss is not None:
            day = now // NS_PER_DAY
            equity = self.marked_equity()
            if day != self._day:
                # The day starts from the last equity seen before it (the previous close of
                # the book, for daily bars), or from now on the first day.
                start = self._last_equity if self._day is not None else equity
                self._day, self._day_start_equity = day, start
            self._last_equity = equity
            if self._day_start_equity - equity > self._max_loss:
                self.killed = True
                loss = (self._day_start_equity - equity) / SCALE
                return Reason.DAILY_LOSS, f"daily loss {loss:.2f} exceeds the limit; kill switch on"
        if self._no_order_limits:
            return Reason.ALLOWED, ""
        price = order.price_fx or self.last_price(order.instrument) or 0
        qty = order.qty_fx
        if qty == 0 and order.aux > 0 and price > 0:
            qty = order.aux * SCALE // price  # sized by value: estimate at the last price
        if self._max_qty is not None and qty > self._max_qty:
            return (
                Reason.MAX_ORDER_QTY,
                f"order qty {units_text(qty)} > max {units_text(self._max_qty)}",
            )
        if self._max_notional is not None and notional(price, qty) > self._max_notional:
            value = notional(price, qty) / SCALE
            return (
                Reason.MAX_NOTIONAL,
                f"notional {value:.2f} > max {units_text(self._max_notional)}",
            )
        if self._max_position is not None:
            held = self.portfolio.qty_fx(order.instrument)
            after = held + (qty if order.side == BUY else -qty)
            if abs(after) > self._max_position:
                return (
                    Reason.MAX_POSITION,
                    f"position would be {units_text(after)}, max {units_text(self._max_position)}",
                )
        if self.limits.max_orders_per_second is not None:
            while self._recent and self._recent[0] <= now - 1_000_000_000:
                self._recent.popleft()
            if len(self._recent) >= self.limits.max_orders_per_second:
                return Reason.ORDER_RATE, (
                    f"more than {self.limits.max_orders_per_second} orders in one second"
                )
            self._recent.append(now)
        return Reason.ALLOWED, ""

    def process(self, order: Event, kernel: Kernel) -> bool:
        """Decides, logs the decision, and tells whether the order goes on."""
        reason, words = self.check(order, kernel.now)
        allowed = reason == Reason.ALLOWED
        kernel.emit(
            Event(
                K_RISK,
                0,
                instrument=order.instrument,
                order_id=order.order_id,
                side=order.side,
                price=order.price_fx,
                qty=order.qty_fx,
                aux=int(reason),
            ),
            # An allowed order's code says it all; a denial carries its reason in words.
            payload=None if allowed else words,
        )
        return allowed
