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
from typing import TYPE_CHECKING, Any, ClassVar

from admf._core import Event

if TYPE_CHECKING:
    from admf.kernel import Context


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


def overridden_handlers(strategy: Strategy) -> list[str]:
    """The handler names a strategy's class overrides, in ``HANDLER_KINDS`` order."""
    cls = type(strategy)
    return [name for name in HANDLER_KINDS if getattr(cls, name) is not getattr(Strategy, name)]
