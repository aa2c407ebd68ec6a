"""The SMA crossover in backtrader, with the conventions admf's bar venue uses: decide on the
close of bar t, fill at the open of bar t+1 (cheat-on-open), buying the whole units the cash
affords at that open, selling the whole position.

The cross is the rule of backtrader's ``CrossOver`` (the last non-zero difference changed
sign) with differences below the price resolution (1e-9) taken as zero, as the admf plugin
does: backtrader's float SMAs of equal decimal averages can differ in the last bit and would
otherwise cross on rounding noise."""

from __future__ import annotations

from typing import Any

import backtrader as bt


class BacktraderSmaCross(bt.Strategy):  # type: ignore[misc]
    params = (("fast", 10), ("slow", 30))

    def __init__(self) -> None:
        self.fast = bt.ind.SMA(self.data.close, period=self.p.fast)
        self.slow = bt.ind.SMA(self.data.close, period=self.p.slow)
        self.last_diff = 0.0
        self.signal = 0
        self.fills: list[tuple[str, str, int, float]] = []

    def next(self) -> None:
        self.signal = 0
        if len(self) < self.p.slow:
            return
        before = self.last_diff
        diff = self.fast[0] - self.slow[0]
        if abs(diff) < 1e-9:
            diff = 0.0
        if diff != 0.0:
            self.last_diff = diff
        if before < 0.0 < diff and not self.position:
            self.signal = 1
        elif before > 0.0 > diff and self.position.size > 0:
            self.signal = -1

    def next_open(self) -> None:
        if self.signal == 1:
            self.buy(size=int(self.broker.getcash() / self.data.open[0]))
        elif self.signal == -1:
            self.close()
        self.signal = 0

    def notify_order(self, order: Any) -> None:
        if order.status == order.Completed:
            when = bt.num2date(order.executed.dt).date().isoformat()
            side = "BUY" if order.isbuy() else "SELL"
            self.fills.append((when, side, int(abs(order.executed.size)), order.executed.price))


def run_backtrader(path: str, fast: int = 10, slow: int = 30, cash: float = 100_000.0) -> Any:
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    cerebro.broker.setcash(cash)
    cerebro.adddata(bt.feeds.YahooFinanceCSVData(dataname=path, adjclose=False, round=False))
    cerebro.addstrategy(BacktraderSmaCross, fast=fast, slow=slow)
    return cerebro.run()[0]
