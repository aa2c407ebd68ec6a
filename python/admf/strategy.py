"""The strategy API: a class with a frozen config and typed handlers, acting through a context.

A strategy reads state and issues commands through its ``ctx`` (`Context`); it never changes
engine state directly. Every command is an event: ``ctx.submit`` sequences an
``ORDER_SUBMIT`` record in the log and sends it down the order pipeline (validation, risk,
execution, audit); the venue's answers come back as events (``on_order``, ``on_fill``). The
same class runs in a backtest, in a replay and live, unchanged.

Handlers the class does not override are not subscribed: events nobody in Python handles stay
in Rust.
"""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from admf._core import ATR, EMA, RSI, SMA, Bollinger, Event
from admf.errors import AdmfError
from admf.events import (
    BUY,
    F_FOK,
    F_IOC,
    F_MARKET,
    F_POST_ONLY,
    K_CUSTOM,
    K_ORDER_CANCEL,
    K_ORDER_MODIFY,
    K_SIGNAL,
    SCALE,
    SELL,
    to_fixed,
)
from admf.portfolio import Portfolio
from admf.venue import Instruments

if TYPE_CHECKING:
    from admf.kernel import Kernel, Payload

Units = int | float | Decimal
"""A number in units (shares, currency) as a strategy passes it."""


class OrderRoute(Protocol):
    """Where a context sends order commands: the kernel's core (the order path in Rust) or an
    `admf.pipeline.OrderPipeline` of Python stages."""

    def command(self, event: Event) -> None: ...

    def submit(
        self,
        instrument: int,
        order_id: int,
        side: int,
        price: int,
        qty: int,
        value: int,
        flags: int,
    ) -> None: ...


@dataclasses.dataclass(frozen=True)
class StrategyConfig:
    """Base of a strategy's configuration: subclass it as a frozen dataclass."""


class Component:
    """The lifecycle every component shares (strategies, risk, portfolio, venues, adapters).

    The kernel calls ``initialize`` once it is wired, ``start`` before the first event,
    ``stop`` after the last, ``reset`` to run again from scratch and ``teardown`` to release
    resources. Each does nothing by default."""

    def initialize(self) -> None:
        """Called once the component is wired to the kernel."""

    def start(self) -> None:
        """Called before the first event."""

    def stop(self) -> None:
        """Called after the last event."""

    def reset(self) -> None:
        """Called to return to the state after ``initialize``."""

    def teardown(self) -> None:
        """Called last, to release resources."""


class Strategy(Component):
    """Base class of strategies. Subclasses set ``Config`` to their frozen config dataclass
    and override the handlers they need."""

    Config: ClassVar[type[StrategyConfig]] = StrategyConfig

    def __init__(self, config: StrategyConfig, ctx: Context) -> None:
        self.config = config
        self.ctx = ctx

    @classmethod
    def make_config(cls, params: dict[str, Any]) -> StrategyConfig:
        """Builds ``Config`` from string or typed parameters (``--param k=v``), converting
        each to the field's type and naming unknown or malformed parameters."""
        from admf.errors import AdmfError

        fields = {f.name: f for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(params) - set(fields))
        if unknown:
            known = ", ".join(sorted(fields)) or "none"
            raise AdmfError(
                f"{cls.__name__} has no parameter {', '.join(unknown)}; its parameters: {known}"
            )
        values: dict[str, Any] = {}
        for name, value in params.items():
            kind = fields[name].type
            kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
            try:
                values[name] = _convert(value, kind_name)
            except ValueError:
                raise AdmfError(
                    f"parameter {name}={value!r} of {cls.__name__} is not a valid {kind_name}"
                ) from None
        try:
            return cls.Config(**values)
        except (TypeError, ValueError) as exc:
            raise AdmfError(f"invalid parameters for {cls.__name__}: {exc}") from None

    def start(self) -> None:
        self.on_start()

    def stop(self) -> None:
        self.on_stop()

    # -- handlers (override what you need) ---------------------------------------------

    def on_start(self) -> None:
        """Before the first event."""

    def on_bar(self, bar: Event) -> None:
        """A bar (``bar.open``, ``bar.high``, ``bar.low``, ``bar.close``, ``bar.volume``)."""

    def on_quote(self, quote: Event) -> None:
        """A top-of-book quote (``quote.bid``, ``quote.ask`` and their sizes)."""

    def on_trade(self, trade: Event) -> None:
        """A trade print."""

    def on_book(self, delta: Event) -> None:
        """A book delta (add, cancel, modify, execute, clear); the book is already updated."""

    def on_order(self, report: Event) -> None:
        """An order report: accepted, rejected, canceled, expired, modified."""

    def on_fill(self, fill: Event) -> None:
        """A fill of one of this strategy's orders (the portfolio is already updated)."""

    def on_timer(self, timer: Event) -> None:
        """A timer set with ``ctx.set_timer`` fired (``timer.order_id`` is its id)."""

    def on_stop(self) -> None:
        """After the last event."""


def _convert(value: Any, kind: str) -> Any:
    if not isinstance(value, str):
        return value
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    return value


HANDLER_KINDS: dict[str, tuple[str, ...]] = {
    "on_bar": ("BAR",),
    "on_quote": ("QUOTE",),
    "on_trade": ("TRADE",),
    "on_book": ("BOOK_ADD", "BOOK_CANCEL", "BOOK_MODIFY", "BOOK_EXECUTE", "BOOK_CLEAR"),
    "on_order": (
        "ORDER_ACCEPTED",
        "ORDER_REJECTED",
        "ORDER_CANCELED",
        "ORDER_EXPIRED",
        "ORDER_MODIFIED",
    ),
    "on_fill": ("FILL",),
    "on_timer": ("TIMER",),
}
"""Which event kinds each handler receives."""


Indicator = TypeVar("Indicator", SMA, EMA, RSI, ATR, Bollinger)


def overridden_handlers(strategy: Strategy) -> list[str]:
    """The handler names a strategy's class overrides, in ``HANDLER_KINDS`` order."""
    cls = type(strategy)
    return [name for name in HANDLER_KINDS if getattr(cls, name) is not getattr(Strategy, name)]


class Context:
    """What a strategy reads and commands: time, randomness, portfolio, orders, signals,
    timers. Every command is an event in the log."""

    def __init__(
        self,
        kernel: Kernel,
        portfolio: Portfolio,
        instrument: int,
        books: dict[int, Any] | None = None,
        instruments: Instruments | None = None,
        orders: OrderRoute | None = None,
    ) -> None:
        self._kernel = kernel
        self._instruments = instruments or Instruments()
        route: OrderRoute = orders or kernel.core
        """Where order commands go: the order path in Rust (the kernel's core), or a
        pipeline of Python stages."""
        self._command = route.command
        self._submit = route.submit
        self._next_order_id = kernel.core.next_order_id
        self.portfolio = portfolio
        self.instrument = instrument
        """The default instrument (the first data source's)."""
        self._books = books or {}

    def register_indicator(self, indicator: Indicator, instrument: int | None = None) -> Indicator:
        """Has the kernel feed ``indicator`` (an `admf.indicators` object) with every bar of
        ``instrument`` (default: ``self.instrument``), in Rust, before any handler sees the
        bar; returns it. The usual use, in ``on_start``::

            self.fast = self.ctx.register_indicator(SMA(10))

        then ``self.fast.value`` in ``on_bar``: the value after this bar, as a backtrader
        strategy reads the indicators it declared. SMA, EMA, RSI and Bollinger take the close,
        ATR the high, low and close. Do not also ``update`` it yourself."""
        inst = self.instrument if instrument is None else instrument
        self._kernel.core.feed_indicator(inst, indicator)
        return indicator

    def book(self, instrument: int | None = None) -> Any:
        """The simulated venue of an instrument with book data (``bbo()``, ``depth(side, n)``,
        ``order(id)``, ``open_orders()``: the market's book and own orders' queue positions),
        or None for bar data."""
        return self._books.get(self.instrument if instrument is None else instrument)

    @property
    def now(self) -> int:
        """The kernel clock in ns."""
        return self._kernel.now

    @property
    def rng(self) -> random.Random:
        """The run's seeded random generator (the seed is in the manifest)."""
        return self._kernel.rng

    def position(self, instrument: int | None = None) -> float:
        """The signed position in ``instrument`` (default: ``self.instrument``), in units."""
        return self.position_fx(instrument) / SCALE

    def position_fx(self, instrument: int | None = None) -> int:
        """The signed position, fixed point (``SCALE`` per unit)."""
        return self.portfolio.qty_fx(self.instrument if instrument is None else instrument)

    def submit(
        self,
        side: int,
        qty: Units = 0,
        *,
        instrument: int | None = None,
        price: Units | None = None,
        value: Units = 0,
        ioc: bool = False,
        fok: bool = False,
        post_only: bool = False,
    ) -> int:
        """Submits an order and returns its id. ``qty`` in units (shares, contracts) or, with
        ``qty=0``, ``value`` in currency, sized in whole lots at the fill price (fees included,
        see ``admf.venue``). ``price=None`` is a market order, else a limit price in currency.
        A quantity that is not a positive multiple of the instrument's lot size, or a price
        off its tick, raises `AdmfError`; `submit_fx` takes fixed point."""
        inst = self.instrument if instrument is None else instrument
        qty_fx = qty * SCALE if type(qty) is int else _to_fixed(qty, "qty")
        if qty and not qty_fx:
            raise AdmfError(f"order qty {qty!r} of instrument {inst} is below the 1e-9 resolution")
        value_fx = value * SCALE if type(value) is int else _to_fixed(value, "value")
        price_fx = None if price is None else _to_fixed(price, "price")
        return self._send(inst, side, qty_fx, price_fx, value_fx, ioc, fok, post_only)

    def submit_fx(
        self,
        side: int,
        qty_fx: int = 0,
        *,
        instrument: int | None = None,
        price_fx: int | None = None,
        value_fx: int = 0,
        ioc: bool = False,
        fok: bool = False,
        post_only: bool = False,
    ) -> int:
        """`submit` with quantity, price and value in fixed point (``SCALE`` per unit)."""
        inst = self.instrument if instrument is None else instrument
        return self._send(inst, side, qty_fx, price_fx, value_fx, ioc, fok, post_only)

    def _send(
        self,
        inst: int,
        side: int,
        qty_fx: int,
        price_fx: int | None,
        value_fx: int,
        ioc: bool,
        fok: bool,
        post_only: bool,
    ) -> int:
        if qty_fx == 0 and value_fx <= 0:
            raise AdmfError(f"an order needs a positive qty or value, got qty 0, value {value_fx}")
        instruments = self._instruments
        if price_fx is not None or qty_fx < 0 or qty_fx % instruments.lot:
            # (a market order of whole lots, the common case, needs no call)
            instruments.check(inst, qty_fx or instruments.lot, price_fx)
        flags = F_MARKET if price_fx is None else 0
        if ioc:
            flags |= F_IOC
        if fok:
            flags |= F_FOK
        if post_only:
            flags |= F_POST_ONLY
        order_id = self._next_order_id()
        self._submit(inst, order_id, side, price_fx or 0, qty_fx, value_fx, flags)
        return order_id

    def buy(self, qty: Units = 0, **kwargs: Any) -> int:
        """`submit` a buy: ``ctx.buy(500)`` buys 500 shares at market."""
        return self.submit(BUY, qty, **kwargs)

    def sell(self, qty: Units = 0, **kwargs: Any) -> int:
        """`submit` a sell."""
        return self.submit(SELL, qty, **kwargs)

    def cancel(self, order_id: int, instrument: int | None = None) -> None:
        inst = self.instrument if instrument is None else instrument
        self._command(Event(K_ORDER_CANCEL, 0, instrument=inst, order_id=order_id))

    def modify(
        self, order_id: int, price: Units, qty: Units, instrument: int | None = None
    ) -> None:
        """Moves a resting order to ``price`` and ``qty`` (units)."""
        self.modify_fx(order_id, _to_fixed(price, "price"), _to_fixed(qty, "qty"), instrument)

    def modify_fx(
        self, order_id: int, price_fx: int, qty_fx: int, instrument: int | None = None
    ) -> None:
        """`modify` in fixed point."""
        inst = self.instrument if instrument is None else instrument
        self._instruments.check(inst, qty_fx, price_fx)
        self._command(
            Event(K_ORDER_MODIFY, 0, instrument=inst, order_id=order_id, price=price_fx, qty=qty_fx)
        )

    def emit(
        self, value: Units = 0, payload: Payload | None = None, *, custom: bool = False
    ) -> int:
        """Logs a signal (or a custom event) with a ``value`` in units (kept as its ``price``)
        and an optional payload; returns its seq."""
        kind = K_CUSTOM if custom else K_SIGNAL
        event = Event(kind, 0, instrument=self.instrument, price=_to_fixed(value, "value"))
        return self._kernel.emit(event, payload).seq

    def set_timer(self, *, at: int | None = None, after: int | None = None) -> int:
        """Fires ``on_timer`` at ``at`` ns or ``after`` ns from now; returns the timer id."""
        if (at is None) == (after is None):
            raise AdmfError("set_timer takes exactly one of at= and after=")
        return self._kernel.set_timer(at if at is not None else self.now + (after or 0))


def _to_fixed(value: Units, name: str) -> int:
    """``value`` in fixed point, exactly for ints and Decimals and to the nearest 1e-9 for
    floats; an `AdmfError` naming ``name`` if it is not a finite number."""
    if isinstance(value, int):
        return value * SCALE
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise AdmfError(f"{name} must be a finite number, got {value}")
        return int((value * SCALE).to_integral_value())
    try:
        return to_fixed(value)
    except (TypeError, ValueError):
        raise AdmfError(f"{name} must be a finite number, got {value!r}") from None
