"""An order at the exchange, as Alpaca describes it, and its JSON shape.

The exchange keeps one ``Order`` per order it accepted; the matching engines know it by its
``venue_id`` (an int, the ``order_id`` of admf events) and clients by its UUID ``id`` and
``client_order_id``. Quantities and prices are fixed point; ``to_json`` turns them into
Alpaca's decimal strings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Literal

from admf.exchange.wire import fixed_to_str, rfc3339

OrderType = Literal["market", "limit", "stop", "stop_limit"]
TimeInForce = Literal["day", "gtc", "opg", "cls", "ioc", "fok"]
OrderSide = Literal["buy", "sell"]

ORDER_TYPES: Final[tuple[str, ...]] = ("market", "limit", "stop", "stop_limit")
TIMES_IN_FORCE: Final[tuple[str, ...]] = ("day", "gtc", "opg", "cls", "ioc", "fok")
SIDES: Final[tuple[str, ...]] = ("buy", "sell")

OPEN_STATUSES: Final[frozenset[str]] = frozenset(
    {"new", "accepted", "partially_filled", "pending_new", "pending_cancel", "pending_replace"}
)
"""Statuses of an order that can still trade (``status=open`` in ``GET /v2/orders``)."""


@dataclasses.dataclass
class Order:
    """One order's state. Only the exchange's event loop changes it."""

    id: str
    venue_id: int
    seq: int
    """Arrival number: orders list in this order when their times are equal."""
    account_key: str = dataclasses.field(repr=False)
    client_order_id: str
    symbol: str
    asset_id: str
    side: OrderSide
    type: OrderType
    time_in_force: TimeInForce
    qty: int | None
    notional: int | None
    limit_price: int | None
    stop_price: int | None
    extended_hours: bool
    position_intent: str | None
    created_ns: int
    status: str = "accepted"
    updated_ns: int = 0
    filled_qty: int = 0
    filled_value: int = 0
    """Sum of price * qty / SCALE over the fills (fixed-point currency)."""
    filled_ns: int | None = None
    canceled_ns: int | None = None
    expired_ns: int | None = None
    failed_ns: int | None = None
    replaced_ns: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    triggered: bool = False
    """A stop order whose stop price was reached (it then works as market or limit)."""
    reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> int:
        """Size still to fill (for a notional order without a qty yet: 0)."""
        return (self.qty or 0) - self.filled_qty

    def to_json(self) -> dict[str, Any]:
        def ts(ns: int | None) -> str | None:
            return None if ns is None else rfc3339(ns)

        def num(value: int | None) -> str | None:
            return None if value is None else fixed_to_str(value)

        avg = None
        if self.filled_qty:
            from admf.events import SCALE

            avg = fixed_to_str(self.filled_value * SCALE // self.filled_qty)
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": rfc3339(self.created_ns),
            "updated_at": rfc3339(self.updated_ns or self.created_ns),
            "submitted_at": rfc3339(self.created_ns),
            "filled_at": ts(self.filled_ns),
            "expired_at": ts(self.expired_ns),
            "expires_at": None,
            "canceled_at": ts(self.canceled_ns),
            "failed_at": ts(self.failed_ns),
            "replaced_at": ts(self.replaced_ns),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": self.asset_id,
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": num(self.notional),
            "qty": num(self.qty),
            "filled_qty": fixed_to_str(self.filled_qty),
            "filled_avg_price": avg,
            "order_class": "simple",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": self.position_intent,
            "time_in_force": self.time_in_force,
            "limit_price": num(self.limit_price),
            "stop_price": num(self.stop_price),
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "subtag": None,
            "source": None,
        }
