"""Backtest figures (run by `make bench`): the SMA(10/30) plugin and a no-op strategy on 1M
one-minute bars, events no Python handler subscribed to, and backtrader running the same
strategy on the same bars in the same run (its fills checked equal to ours); the order-heavy
EMA(10/20) flip on 1M synthetic FX bars; the cost of one order from ``ctx.submit`` to
``on_fill``; and the cost of building a result (equity curve, round trips, statistics) next
to the run that made it.

The SMA bars are real BTC-PERP one-minute bars (NautilusTrader's FTX sample, 45,031 bars)
laid back to back in time until there are ``ADMF_BENCH_BARS`` (default 1,000,000) of them;
the FX bars are a seeded random walk (`tests.bench.fx_bars`, seed 42).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from admf import SCALE, Kind, Side
from admf.analysis import analyze, statistics_inputs
from admf.backtest import BacktestSettings, resolve_strategy, run_kernel
from admf.kernel import Kernel
from admf.metrics import summarize
from tests.bench.fx_bars import fx_minute_bars
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


@pytest.fixture(scope="module")
def fx_bars() -> np.ndarray:
    return fx_minute_bars(N, seed=42)


def _admf(strategy: str, bars: np.ndarray, sink: Any = None) -> Any:
    kernel, portfolio = run_kernel(
        resolve_strategy(strategy), {}, BacktestSettings(), [bars], [1], sink=sink or _Fills()
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


def test_backtest_ema_flip_1m(benchmark: Any, fx_bars: np.ndarray) -> None:
    benchmark.extra_info["elements"] = len(fx_bars)
    kernel, portfolio = benchmark.pedantic(
        _admf, args=("tests.integration.strategies:EmaFlip", fx_bars), rounds=3, warmup_rounds=0
    )
    counts = kernel.kind_counts()
    benchmark.extra_info["orders"] = counts["ORDER_SUBMIT"]
    benchmark.extra_info["fills"] = counts["FILL"]
    # About 90,000 orders, every one filled (a close and a reverse at every cross).
    assert counts["ORDER_SUBMIT"] == counts["FILL"] == portfolio.fills > 80_000


def test_order_submit_to_on_fill(benchmark: Any, fx_bars: np.ndarray) -> None:
    """One market order per bar, each filled at the next open and heard of in ``on_fill``; the
    figure is per order, the same bars run by a no-op strategy subtracted (median of 3 runs
    of each, in this test)."""
    bars = fx_bars[: min(len(fx_bars), 200_000)]
    noop = []
    for _ in range(3):
        start = time.perf_counter_ns()
        _admf("tests.integration.strategies:NoOp", bars)
        noop.append(time.perf_counter_ns() - start)
    timed: list[int] = []

    def run() -> Any:
        start = time.perf_counter_ns()
        out = _admf("tests.integration.strategies:Alternate", bars)
        timed.append(time.perf_counter_ns() - start)
        return out

    kernel, _ = benchmark.pedantic(run, rounds=3, warmup_rounds=0)
    orders = kernel.kind_counts()["FILL"]
    assert orders == len(bars) - 1
    extra = float(np.median(timed) - np.median(noop))
    benchmark.extra_info["elements"] = orders
    benchmark.extra_info["ns_per_order_over_noop"] = round(extra / orders)


class _All:
    """A sink keeping every event, as a backtest's result does."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def __call__(self, events: np.ndarray, payloads: object) -> None:
        self.chunks.append(events)


def test_result_building_1m(benchmark: Any, bars: np.ndarray) -> None:
    """Equity curve, round trips and statistics of a 1M-bar SMA run; ``share_of_run`` is this
    over the run's own time (median of 3 runs, in this test): the target is <= 10%, reported,
    not asserted (`make test` runs this once, on a busy machine)."""
    runs = []
    sink = _All()
    for _ in range(3):
        sink = _All()
        start = time.perf_counter_ns()
        _admf("sma-cross", bars, sink)
        runs.append(time.perf_counter_ns() - start)
    events = np.concatenate(sink.chunks)
    built: list[int] = []

    def build() -> Any:
        start = time.perf_counter_ns()
        out = summarize(*statistics_inputs(analyze(events, 100_000 * SCALE)))
        built.append(time.perf_counter_ns() - start)
        return out

    summary = benchmark.pedantic(build, rounds=5, warmup_rounds=1)
    assert summary.trades > 0
    benchmark.extra_info["elements"] = len(bars)
    share = float(np.median(built) / np.median(runs))
    benchmark.extra_info["share_of_run"] = round(share, 4)
