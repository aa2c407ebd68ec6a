"""Strategies used by the integration tests (loaded as ``module:Class``)."""

from __future__ import annotations

import dataclasses

from admf import Event, Side, Strategy, StrategyConfig
from admf.indicators import EMA

BEHAVIOUR = {"buy_every": 5}
"""Read at run time by `Rebalancer`, so a test can make a replay diverge on purpose."""


@dataclasses.dataclass(frozen=True)
class RebalancerConfig(StrategyConfig):
    qty: int = 10


class Rebalancer(Strategy):
    """Buys on every N-th bar and sells on the next; signals and random draws logged."""

    Config = RebalancerConfig
    config: RebalancerConfig

    def on_start(self) -> None:
        self.bars = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        if self.bars % BEHAVIOUR["buy_every"] == 0:
            self.ctx.buy(self.config.qty)
            self.ctx.emit(bar.close, {"draw": self.ctx.rng.random(), "bar": self.bars})
        elif self.ctx.position() > 0:
            self.ctx.sell(self.ctx.position())


class Flaky(Strategy):
    """Raises on the third bar."""

    def on_start(self) -> None:
        self.bars = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        if self.bars == 3:
            raise RuntimeError("flaky strategy failed")


class Greedy(Strategy):
    """Buys 1000 units on every bar (to hit risk limits)."""

    def on_bar(self, bar: Event) -> None:
        self.ctx.submit(Side.BUY, 1000)


class Timed(Strategy):
    """Sets a timer one hour after the first bar and logs when it fires."""

    def on_start(self) -> None:
        self.fired: list[int] = []
        self.set = False

    def on_bar(self, bar: Event) -> None:
        if not self.set:
            self.ctx.set_timer(after=3_600 * 10**9)
            self.set = True

    def on_timer(self, timer: Event) -> None:
        self.fired.append(timer.ts)
        self.ctx.emit(0, "timer fired")


class NoOp(Strategy):
    def on_bar(self, bar: Event) -> None:
        pass


class BrokenStart(Strategy):
    """Fails in on_start."""

    def on_start(self) -> None:
        raise KeyError("missing warm-up data")

    def on_bar(self, bar: Event) -> None:
        raise AssertionError("never reached")


class BookWatcher(Strategy):
    """Records the best bid and ask it reads on every book delta."""

    def on_start(self) -> None:
        self.seen: list[tuple[int, int | None, int | None]] = []

    def on_book(self, delta: Event) -> None:
        bid, ask = self.ctx.book().bbo()
        self.seen.append((delta.seq, bid, ask))


@dataclasses.dataclass(frozen=True)
class BuyOnceConfig(StrategyConfig):
    qty: float = 500.0
    price: float = 0.0
    """0: a market order, else a limit price."""


class BuyOnce(Strategy):
    """Buys ``qty`` units on the first bar and keeps what it reads: the fills (in units) and,
    on every later bar, the equity next to cash + position * close."""

    Config = BuyOnceConfig
    config: BuyOnceConfig

    def on_start(self) -> None:
        self.fills: list[tuple[float, float, float]] = []
        self.marks: list[tuple[float, float]] = []
        self.bought = False

    def on_bar(self, bar: Event) -> None:
        if not self.bought:
            self.bought = True
            price = self.config.price or None
            self.ctx.buy(self.config.qty, price=price)
            return
        held = self.ctx.position()
        self.marks.append((self.ctx.portfolio.equity(), self.ctx.portfolio.cash + held * bar.close))

    def on_fill(self, fill: Event) -> None:
        self.fills.append((fill.price, fill.qty, fill.fee))


@dataclasses.dataclass(frozen=True)
class EmaFlipConfig(StrategyConfig):
    fast: int = 10
    slow: int = 20
    qty: float = 10_000.0


class EmaFlip(Strategy):
    """EMA(fast/slow) cross, always in the market once the averages are warm: at every cross
    a market order closing the position and a market order opening the reverse one (the
    order-heavy benchmark)."""

    Config = EmaFlipConfig
    config: EmaFlipConfig

    def on_start(self) -> None:
        self.fast = EMA(self.config.fast)
        self.slow = EMA(self.config.slow)
        self.side = 0
        self.fills = 0

    def on_bar(self, bar: Event) -> None:
        close = bar.close
        fast = self.fast.update(close)
        slow = self.slow.update(close)
        if slow is None or fast is None or fast == slow:
            return
        side = 1 if fast > slow else -1
        if side == self.side:
            return
        qty = self.config.qty
        if self.side:
            self.ctx.submit(Side.BUY if side > 0 else Side.SELL, qty)  # close
        self.ctx.submit(Side.BUY if side > 0 else Side.SELL, qty)  # reverse
        self.side = side

    def on_fill(self, fill: Event) -> None:
        self.fills += 1


class Alternate(Strategy):
    """A market order of one unit on every bar, buying and selling in turn, and hears of each
    fill: the cost of one order, from ``ctx.submit`` to ``on_fill``."""

    def on_start(self) -> None:
        self.long = False
        self.fills = 0

    def on_bar(self, bar: Event) -> None:
        self.long = not self.long
        self.ctx.submit(Side.BUY if self.long else Side.SELL, 1)

    def on_fill(self, fill: Event) -> None:
        self.fills += 1


class OrderTypes(Strategy):
    """Limit, IOC, FOK, modify, cancel, a cancel of nothing and value-sized sells, on a
    schedule of bars: every branch of the bar venue."""

    def on_start(self) -> None:
        self.bars = 0
        self.resting = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        step = self.bars % 10
        close = bar.close
        if step == 1:
            self.resting = self.ctx.buy(10, price=round(close * 0.97, 2))
        elif step == 2:
            self.ctx.modify(self.resting, round(close * 0.99, 2), 20)
        elif step == 3:
            self.ctx.sell(5, price=round(close * 1.2, 2), ioc=True)
            self.ctx.buy(5, price=round(close * 1.01, 2), fok=True)
        elif step == 4:
            self.ctx.cancel(self.resting)
            self.ctx.cancel(10_000_000)
        elif step == 5:
            self.ctx.sell(value=2_000.0)
        elif step == 6:
            self.ctx.buy(value=1_000.0, price=round(close * 1.05, 2))


class TradeEach(Strategy):
    """Trades every instrument it sees bars of: buys 2,000 worth on every 7th bar of it and
    sells the position 3 bars later (several instruments in one account)."""

    def on_start(self) -> None:
        self.seen: dict[int, int] = {}

    def on_bar(self, bar: Event) -> None:
        n = self.seen[bar.instrument] = self.seen.get(bar.instrument, 0) + 1
        held = self.ctx.position(bar.instrument)
        if n % 7 == 0:
            self.ctx.buy(value=2_000.0, instrument=bar.instrument)
        elif n % 7 == 3 and held > 0:
            self.ctx.sell(held, instrument=bar.instrument)
