"""An order at the exchange, as Alpaca describes it: the checked request (``parse_order``),
the order's state and its JSON shape.

The exchange keeps one ``Order`` per order it accepted; the matching engines know it by its
``venue_id`` (an int, the ``order_id`` of admf events) and clients by its UUID ``id`` and
``client_order_id``. Quantities and prices are fixed point; ``to_json`` turns them into
Alpaca's decimal strings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final, Literal, cast

from admf.events import SCALE
from admf.exchange.market import Instrument
from admf.exchange.wire import (
    ASSET_CLASS,
    CODE_BAD_REQUEST,
    ApiError,
    fixed_to_str,
    parse_fixed,
    rfc3339,
    unprocessable,
)

OrderType = Literal["market", "limit", "stop", "stop_limit"]
TimeInForce = Literal["day", "gtc", "opg", "cls", "ioc", "fok"]
OrderSide = Literal["buy", "sell"]

ORDER_TYPES: Final[tuple[str, ...]] = ("market", "limit", "stop", "stop_limit")
TIMES_IN_FORCE: Final[tuple[str, ...]] = ("day", "gtc", "opg", "cls", "ioc", "fok")
SIDES: Final[tuple[str, ...]] = ("buy", "sell")

_MAX_CLIENT_ORDER_ID = 48
_REPLACE_FIELDS = ("qty", "time_in_force", "limit_price", "stop_price", "client_order_id")

OPEN_STATUSES: Final[frozenset[str]] = frozenset(
    {"new", "accepted", "partially_filled", "pending_new", "pending_cancel", "pending_replace"}
)
"""Statuses of an order that can still trade (``status=open`` in ``GET /v2/orders``)."""


@dataclasses.dataclass(frozen=True)
class OrderRequest:
    """An order (or a replacement) as a client asked for it, checked."""

    inst: Instrument
    side: OrderSide
    type: OrderType
    tif: TimeInForce
    qty: int | None
    notional: int | None
    limit: int | None
    stop: int | None
    client_order_id: str | None
    extended_hours: bool
    position_intent: str | None


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
            "asset_class": ASSET_CLASS,
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


def parse_order(
    body: Any, lookup: Callable[[str], Instrument | None], replacing: Order | None = None
) -> OrderRequest:
    """Checks an order request's JSON (or a replacement's, against the order it replaces);
    raises the ``ApiError`` a client gets for anything wrong."""
    if not isinstance(body, dict):
        raise ApiError(400, CODE_BAD_REQUEST, "request body must be a JSON object")

    def text(name: str, default: str | None = None) -> str | None:
        value = body.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise unprocessable(f"{name} must be a string, got {value!r}")
        return value

    def number(name: str) -> int | None:
        value = body.get(name)
        return None if value is None else parse_fixed(value, name)

    symbol: str | None
    side: str | None
    type_: str | None
    if replacing is not None:
        unknown = [k for k in body if k not in (*_REPLACE_FIELDS, "trail")]
        if unknown:
            raise unprocessable(f"cannot replace {', '.join(sorted(unknown))}")
        symbol = replacing.symbol
        side = replacing.side
        type_ = replacing.type
        notional = None
    else:
        symbol = text("symbol")
        if not symbol:
            raise unprocessable("symbol is required")
        side = text("side")
        if side not in SIDES:
            raise unprocessable(f"side must be one of {', '.join(SIDES)}, got {side!r}")
        type_ = text("type", text("order_type", "market"))
        if type_ == "trailing_stop":
            raise unprocessable("trailing_stop orders are not supported by this exchange")
        if type_ not in ORDER_TYPES:
            raise unprocessable(f"type must be one of {', '.join(ORDER_TYPES)}, got {type_!r}")
        order_class = text("order_class") or "simple"
        if order_class != "simple":
            raise unprocessable(f"order_class {order_class!r} is not supported (simple only)")
        notional = number("notional")
    inst = lookup(symbol)
    if inst is None:
        raise unprocessable(f'asset "{symbol}" not found')
    qty = number("qty")
    if replacing is not None and qty is None and replacing.qty is not None:
        # What is left of it (Alpaca reuses the original qty, a known bug there).
        qty = replacing.qty - replacing.filled_qty
    if (qty is None) == (notional is None):
        raise unprocessable("qty or notional is required, exactly one of them")
    if qty is not None and qty <= 0:
        raise unprocessable(f"qty must be > 0, got {fixed_to_str(qty)}")
    if notional is not None:
        if notional <= 0:
            raise unprocessable(f"notional must be > 0, got {fixed_to_str(notional)}")
        if type_ != "market":
            raise unprocessable("notional orders must be market orders")
    default_tif = replacing.time_in_force if replacing is not None else None
    tif = text("time_in_force", default_tif)
    if tif not in TIMES_IN_FORCE:
        raise unprocessable(
            f"time_in_force must be one of {', '.join(TIMES_IN_FORCE)}, got {tif!r}"
        )
    if inst.is_book and tif in ("opg", "cls"):
        raise unprocessable(f"time_in_force {tif} needs bar data; {inst.symbol} has a book")
    limit = number("limit_price")
    stop = number("stop_price")
    if replacing is not None:
        limit = limit if limit is not None else replacing.limit_price
        stop = stop if stop is not None else replacing.stop_price
    if type_ in ("limit", "stop_limit"):
        if limit is None or limit <= 0:
            raise unprocessable(f"limit_price must be given and > 0 for {type_} orders")
    elif limit is not None:
        raise unprocessable(f"limit_price is not allowed for {type_} orders")
    if type_ in ("stop", "stop_limit"):
        if stop is None or stop <= 0:
            raise unprocessable(f"stop_price must be given and > 0 for {type_} orders")
    elif stop is not None:
        raise unprocessable(f"stop_price is not allowed for {type_} orders")
    client_order_id = text("client_order_id")
    if client_order_id is not None and not 0 < len(client_order_id) <= _MAX_CLIENT_ORDER_ID:
        raise unprocessable(f"client_order_id must be 1 to {_MAX_CLIENT_ORDER_ID} characters")
    extended = body.get("extended_hours", False) if replacing is None else replacing.extended_hours
    if not isinstance(extended, bool):
        raise unprocessable(f"extended_hours must be true or false, got {extended!r}")
    intent = text("position_intent") if replacing is None else replacing.position_intent
    return OrderRequest(
        inst=inst,
        side=cast(OrderSide, side),
        type=cast(OrderType, type_),
        tif=cast(TimeInForce, tif),
        qty=qty,
        notional=notional,
        limit=limit,
        stop=stop,
        client_order_id=client_order_id,
        extended_hours=extended,
        position_intent=intent,
    )
