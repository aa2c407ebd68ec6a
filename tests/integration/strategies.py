"""Strategies used by the integration tests (loaded as ``module:Class``)."""

from __future__ import annotations

import dataclasses

from admf import SCALE, Event, Side, Strategy, StrategyConfig

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
            self.ctx.buy(self.config.qty * SCALE)
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
        self.ctx.submit(Side.BUY, 1000 * SCALE)


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
class SleepyConfig(StrategyConfig):
    started: str = ""
    """A file created when the run starts (a test waits for it before interrupting)."""


class Sleepy(Strategy):
    """Takes 10 ms per bar, so that a test can interrupt the run."""

    Config = SleepyConfig
    config: SleepyConfig

    def on_start(self) -> None:
        if self.config.started:
            with open(self.config.started, "w") as marker:
                marker.write("started\n")

    def on_bar(self, bar: Event) -> None:
        import time

        time.sleep(0.01)


class ValueBuyer(Strategy):
    """Buys with all its cash on the first bar (an order sized by value)."""

    def on_start(self) -> None:
        self.bought = False

    def on_bar(self, bar: Event) -> None:
        if not self.bought:
            self.bought = True
            self.ctx.submit(Side.BUY, value=self.ctx.portfolio.cash)
