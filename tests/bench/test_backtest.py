"""Backtest figures (run by `make bench`): the SMA(10/30) plugin and a no-op strategy on 1M
one-minute bars, events no Python handler subscribed to, and backtrader running the same
strategy on the same bars in the same run (its fills checked equal to ours).

The bars are real BTC-PERP one-minute bars (NautilusTrader's FTX sample, 45,031 bars) laid
back to back in time until there are ``ADMF_BENCH_BARS`` (default 1,000,000) of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from admf import SCALE, Kind, Side
from admf.backtest import BacktestSettings, resolve_strategy, run_kernel
from admf.kernel import Kernel
from tests.integration.backtrader_feed import minute_bars

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT.parent / "shared/data/market/nautilus__ftx_btc-perp-20211231-20220201_1m.csv",
    ROOT / "tests/data/market/nautilus__ftx_btc-perp-20211231-20220201_1m_head300.csv",
]
N = int(os.environ.get("ADMF_BENCH_BARS", "1000000"))


@pytest.fixture(scope="module")
def bars() -> np.ndarray:
    source = next(p for p in SOURCES if p.exists())
    return minute_bars(N, str(source))


def _admf(strategy: str, bars: np.ndarray) -> Any:
    kernel, portfolio = run_kernel(
        resolve_strategy(strategy), {}, BacktestSettings(), [bars], [1], sink=_Fills()
    )
    return kernel, portfolio


class _Fills:
    """A sink keeping only the fills (the bench measures the kernel, not a log)."""

    def __init__(self) -> None:
        self.fills: list[np.ndarray] = []

    def __call__(self, events: np.ndarray, payloads: object) -> None:
        self.fills.append(events[events["kind"] == Kind.FILL].copy())


def test_backtest_sma_1m(benchmark: Any, bars: np.ndarray) -> None:
    benchmark.extra_info["elements"] = len(bars)
    _kernel, portfolio = benchmark.pedantic(
        _admf, args=("sma-cross", bars), rounds=3, warmup_rounds=0
    )
    assert portfolio.fills > 0


def test_backtest_noop_1m(benchmark: Any, bars: np.ndarray) -> None:
    benchmark.extra_info["elements"] = len(bars)
    benchmark.pedantic(
        _admf, args=("tests.integration.strategies:NoOp", bars), rounds=3, warmup_rounds=0
    )


def test_kernel_unsubscribed_events(benchmark: Any, bars: np.ndarray) -> None:
    deltas = bars.copy()
    deltas["kind"] = Kind.BOOK_ADD

    def setup() -> tuple[tuple[Kernel], dict[str, Any]]:
        # Loading the inputs into the kernel is not part of the figure; running them is.
        return (Kernel([deltas]),), {}

    benchmark.extra_info["elements"] = len(deltas)
    benchmark.pedantic(Kernel.run, setup=setup, rounds=5, warmup_rounds=1)


def test_backtrader_sma_1m(benchmark: Any, bars: np.ndarray) -> None:
    bt = pytest.importorskip("backtrader")
    from tests.integration.backtrader_feed import EventBarsFeed
    from tests.integration.backtrader_sma import BacktraderSmaCross

    def run() -> Any:
        cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
        cerebro.broker.setcash(100_000.0)
        cerebro.adddata(EventBarsFeed(events=bars))
        cerebro.addstrategy(BacktraderSmaCross, fast=10, slow=30)
        return cerebro.run()[0]

    benchmark.extra_info["elements"] = len(bars)
    theirs = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    # The same trades: side, size and price of every fill, in order.
    sink = _Fills()
    run_kernel(resolve_strategy("sma-cross"), {}, BacktestSettings(), [bars], [1], sink)
    ours = np.concatenate(sink.fills)
    assert len(ours) == len(theirs.fills)
    for row, (_, side, size, price) in zip(ours, theirs.fills, strict=True):
        assert ("BUY" if row["side"] == Side.BUY else "SELL") == side
        assert int(row["qty"]) == size * SCALE
        assert int(row["price"]) / SCALE == pytest.approx(price, abs=1e-9)
