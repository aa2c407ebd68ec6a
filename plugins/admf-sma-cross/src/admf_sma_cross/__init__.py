"""Moving-average crossover on bars: an admf strategy plugin.

Buys when the fast SMA crosses above the slow one and sells the whole position when it
crosses below, the way backtrader's ``CrossOver`` indicator defines a cross (the last
non-zero difference changed sign), with differences below the price resolution (1e-9) taken
as zero. Orders are market orders sized by value (``fraction`` of the cash, in currency), so
the venue buys the whole units that value affords at the fill price, fees included. The
averages are registered with the kernel, which feeds them every bar's close in fixed point
before ``on_bar`` (as backtrader updates the indicators a strategy declared): exact window
sums, so the crosses are the ones backtrader finds.
"""

from __future__ import annotations

import dataclasses

from admf import Event, Strategy, StrategyConfig
from admf.indicators import SMA

__all__ = ["SmaCross", "SmaCrossConfig"]


@dataclasses.dataclass(frozen=True)
class SmaCrossConfig(StrategyConfig):
    fast: int = 10
    slow: int = 30
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.fast < self.slow:
            raise ValueError(f"need 0 < fast < slow, got fast={self.fast}, slow={self.slow}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")


class SmaCross(Strategy):
    Config = SmaCrossConfig
    config: SmaCrossConfig

    def on_start(self) -> None:
        self.fast = self.ctx.register_indicator(SMA(self.config.fast))
        self.slow = self.ctx.register_indicator(SMA(self.config.slow))
        self.last_diff = 0.0

    def on_bar(self, bar: Event) -> None:
        slow = self.slow.value
        if slow is None:
            return  # warming up (the fast average is warm before the slow one)
        diff = self.fast.value - slow  # type: ignore[operator]
        if -1e-9 < diff < 1e-9:
            return  # no cross: the last non-zero difference stands
        before = self.last_diff
        self.last_diff = diff
        if before < 0.0 < diff and self.ctx.position() == 0:
            self.ctx.buy(value=self.ctx.portfolio.cash * self.config.fraction)
        elif diff < 0.0 < before and self.ctx.position() > 0:
            self.ctx.sell(self.ctx.position())
