"""Strategies of the live tests (importable as ``tests.live.strategies:NAME`` when the tests
run from the repository root, as ``python -m pytest`` and ``python -m admf`` do)."""

from __future__ import annotations

import dataclasses
import time

from admf import Event, Kind, Strategy, StrategyConfig

_ENDED = (Kind.ORDER_CANCELED, Kind.ORDER_REJECTED, Kind.ORDER_EXPIRED)


@dataclasses.dataclass(frozen=True)
class FlipConfig(StrategyConfig):
    every: int = 3
    qty: int = 10


class Flip(Strategy):
    """Buys ``qty`` at market every ``every`` bars while flat and sells it ``every`` bars
    later: many orders and fills on a short data file."""

    Config = FlipConfig
    config: FlipConfig

    def on_start(self) -> None:
        self.bars = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        if self.bars % self.config.every:
            return
        if self.ctx.position() == 0:
            self.ctx.buy(self.config.qty)
        elif self.ctx.position() > 0:
            self.ctx.sell(self.ctx.position())


@dataclasses.dataclass(frozen=True)
class RestingConfig(StrategyConfig):
    qty: int = 5
    below: float = 0.5
    """Limit price as a fraction of the first close: far below the market, so it rests."""


class Resting(Strategy):
    """Places one buy limit far below the market on its first bar and keeps it open."""

    Config = RestingConfig
    config: RestingConfig

    def on_start(self) -> None:
        self.placed = False

    def on_bar(self, bar: Event) -> None:
        if not self.placed:
            self.placed = True
            self.ctx.buy(self.config.qty, price=round(bar.close * self.config.below, 2))


@dataclasses.dataclass(frozen=True)
class TimedConfig(StrategyConfig):
    every_ms: int = 300
    times: int = 3


class Timed(Strategy):
    """Sets a timer from ``on_start`` and re-arms it: signals at wall-clock intervals, fired by
    the session's ``CLOCK`` readings (and again, identically, in a replay)."""

    Config = TimedConfig
    config: TimedConfig

    def on_start(self) -> None:
        self.fired = 0
        self.ctx.set_timer(after=self.config.every_ms * 1_000_000)

    def on_timer(self, timer: Event) -> None:
        self.fired += 1
        self.ctx.emit(self.fired)
        if self.fired < self.config.times:
            self.ctx.set_timer(after=self.config.every_ms * 1_000_000)


class SlowFlip(Flip):
    """`Flip` that takes 15 ms per bar: a node slower than its market data."""

    def on_bar(self, bar: Event) -> None:
        time.sleep(0.015)
        super().on_bar(bar)


@dataclasses.dataclass(frozen=True)
class ModifyConfig(StrategyConfig):
    qty: int = 5
    below: float = 0.5
    """First limit price as a fraction of the first close (far below: it rests)."""
    at: int = 6
    """The bar on which the order is modified."""
    to_below: float = 0.6
    """The new limit price as a fraction of that bar's close."""
    to_qty: int = 7


class Modify(Strategy):
    """Places one buy limit far below the market and modifies it once, on bar ``at``."""

    Config = ModifyConfig
    config: ModifyConfig

    def on_start(self) -> None:
        self.bars = 0
        self.order = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        c = self.config
        if self.bars == 1:
            self.order = self.ctx.buy(c.qty, price=round(bar.close * c.below, 2))
        elif self.bars == c.at:
            self.ctx.modify(self.order, price=round(bar.close * c.to_below, 2), qty=c.to_qty)


@dataclasses.dataclass(frozen=True)
class RepriceConfig(StrategyConfig):
    qty: int = 1000
    rest: int = 3
    """Bars the order rests far below the market before it is moved up again."""


class Reprice(Strategy):
    """Buys ``qty`` with a limit above the market; at its first (partial) fill moves what is
    left far below the market, and ``rest`` bars later above it again: fills before and after
    each replace, all of one order."""

    Config = RepriceConfig
    config: RepriceConfig

    def on_start(self) -> None:
        self.bars = 0
        self.order = 0
        self.parked_at = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        if self.bars == 1:
            self.order = self.ctx.buy(self.config.qty, price=round(bar.close * 1.5, 2))
        elif self.parked_at and self.bars == self.parked_at + self.config.rest:
            left = self.config.qty - self.ctx.position()
            if left > 0:
                self.ctx.modify(self.order, price=round(bar.close * 1.5, 2), qty=left)

    def on_fill(self, fill: Event) -> None:
        left = self.config.qty - self.ctx.position()
        if not self.parked_at and left > 0:
            self.parked_at = self.bars
            self.ctx.modify(self.order, price=round(fill.price * 0.5, 2), qty=left)


@dataclasses.dataclass(frozen=True)
class QuoteFlipConfig(StrategyConfig):
    every: int = 5
    qty: float = 1000.0


class QuoteFlip(Strategy):
    """Trades on quotes alone: every ``every`` quotes, buys ``qty`` at market while flat and
    sells what it holds while long, one order at a time (fills need a venue that fills on
    quotes: the book venue of an instrument with a tick)."""

    Config = QuoteFlipConfig
    config: QuoteFlipConfig

    def on_start(self) -> None:
        self.quotes = 0
        self.open: int | None = None

    def on_quote(self, quote: Event) -> None:
        self.quotes += 1
        if self.quotes % self.config.every or self.open is not None:
            return
        if self.ctx.position() == 0:
            self.open = self.ctx.buy(self.config.qty)
        elif self.ctx.position() > 0:
            self.open = self.ctx.sell(self.ctx.position())

    def on_fill(self, fill: Event) -> None:
        book = self.ctx.book()
        if fill.order_id == self.open and book is not None and book.order(fill.order_id) is None:
            self.open = None  # filled in full

    def on_order(self, report: Event) -> None:
        if report.order_id == self.open and report.kind in _ENDED:
            self.open = None


@dataclasses.dataclass(frozen=True)
class LadderConfig(StrategyConfig):
    qty: int = 10
    every: int = 3
    below: float = 0.5
    """Price of each resting buy as a fraction of its bar's close (far below: it rests)."""


class Ladder(Strategy):
    """Buys ``qty`` at market on its first bar, then every ``every`` bars places one more
    buy limit of 1 far below the market: a position, resting orders and a steady stream of
    new entries (none of which fills, so what a pause or a flatten leaves is exact)."""

    Config = LadderConfig
    config: LadderConfig

    def on_start(self) -> None:
        self.bars = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        if self.bars == 1:
            self.ctx.buy(self.config.qty)
        elif self.bars % self.config.every == 0:
            self.ctx.buy(1, price=round(bar.close * self.config.below, 2))


@dataclasses.dataclass(frozen=True)
class FlipModifyConfig(FlipConfig):
    move_every: int = 1
    """Bars between two moves of the limit order."""
    below: float = 0.95
    """The limit's price as a fraction of the close (moved 2 % below it and above it)."""


class FlipModify(Flip):
    """`Flip`, and a buy limit of 1 a little below the market, moved (a new price, every other
    time a new quantity) every ``move_every`` bars while it is open: orders modified while
    others fill; a new limit once one fills."""

    Config = FlipModifyConfig
    config: FlipModifyConfig

    def on_start(self) -> None:
        super().on_start()
        self.limit: int | None = None
        self.moves = 0

    def on_bar(self, bar: Event) -> None:
        super().on_bar(bar)
        if self.limit is None:
            self.limit = self.ctx.buy(1, price=round(bar.close * self.config.below, 2))
        elif self.bars % self.config.move_every == 0:
            self.moves += 1
            price = round(bar.close * (self.config.below + 0.02 * (self.moves % 3 - 1)), 2)
            self.ctx.modify(self.limit, price=price, qty=1 + self.moves % 2)

    def on_fill(self, fill: Event) -> None:
        if fill.order_id == self.limit:
            self.limit = None  # what is left of it rests until the stop cancels it

    def on_order(self, report: Event) -> None:
        if report.order_id == self.limit and report.kind in _ENDED and report.side:
            self.limit = None


class Accumulate(Strategy):
    """Buys ``qty`` at market every ``every`` bars, whatever it holds: entries always on
    their way (`Flip`'s settings)."""

    Config = FlipConfig
    config: FlipConfig

    def on_start(self) -> None:
        self.bars = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        if self.bars % self.config.every == 0:
            self.ctx.buy(self.config.qty)
