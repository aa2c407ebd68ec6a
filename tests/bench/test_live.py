"""Live node figures (run by `make bench`; disabled in the test run).

- tick to order, in process: a quote pushed by an adapter into the ``EventQueue`` to the order
  request handed to the execution adapter (the kernel thread drains the queue, the strategy
  submits, the order path runs, the batch is flushed, the command leaves), one at a time;
  with and without the log append that precedes the hand-off in a session (``fsync="never"``
  here: the disk's sync time is the disk's, not the node's);
- the round trip through ``admf exchange serve`` over loopback: an order request to its fill
  received over trade_updates;
- market data throughput the node sustains without conflation: quotes pushed as fast as a
  producer thread can, through a strategy's ``on_quote``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from admf import Event, Kind, Strategy
from admf.live.codes import LiveCode
from admf.live.inbox import Inbox
from admf.live.session import LiveSpec, build_live_node

TRIPS = 2_000
QUOTES = 200_000


class OrderOnQuote(Strategy):
    def on_quote(self, quote: Event) -> None:
        self.ctx.buy(1)


class CountQuotes(Strategy):
    def on_start(self) -> None:
        self.quotes = 0

    def on_quote(self, quote: Event) -> None:
        self.quotes += 1


def _quote(inbox: Inbox, i: int) -> Event:
    return Event(
        Kind.QUOTE,
        inbox.now(),
        instrument=1,
        price=100_000_000_000 + i,
        qty=10**9,
        aux=100_010_000_000 + i,
        order_id=10**9,
    )


class TickToOrder:
    """A live node (no adapters) with a strategy that orders on every quote; `trip` pushes
    a quote and waits until the order is handed over, recording the kernel thread's hand-off
    time minus the push time."""

    def __init__(self, log: Any | None) -> None:
        self.inbox = Inbox(1 << 16)
        self.handed: list[int] = []
        self.latencies: list[int] = []
        self.done = threading.Event()
        self.log = log
        spec = LiveSpec(
            strategy=OrderOnQuote,  # type: ignore[arg-type]
            symbols=("X",),
            data_adapter="replay",
            exec_adapter="bench",
        )
        self.node, outbox = build_live_node(spec, "bench", self._sink, self.inbox.fill)
        assert outbox is not None
        self.outbox = outbox
        self.kernel = threading.Thread(target=self.node.run)
        self.kernel.start()
        self.inbox.record(LiveCode.RECONCILED)
        self.i = 0

    def _sink(self, events: Any, payloads: Any) -> None:
        commands = self.outbox.take()
        if self.log is not None:
            self.log.append(events, payloads)
        if commands:
            self.handed.append(time.perf_counter_ns())
            self.done.set()

    def trip(self) -> None:
        self.i += 1
        self.done.clear()
        start = time.perf_counter_ns()
        self.inbox.offer_market(_quote(self.inbox, self.i))
        self.inbox.hand_off()  # as an adapter does after each message it received
        self.done.wait()
        self.latencies.append(self.handed[-1] - start)

    def close(self) -> None:
        self.inbox.close()
        self.kernel.join()


def _report(benchmark: Any, latencies: list[int]) -> None:
    ns = np.array(latencies[len(latencies) // 10 :])  # the first ones warm the caches up
    p50, p99 = (float(np.percentile(ns, q)) for q in (50, 99))
    benchmark.extra_info.update(p50_ns=p50, p99_ns=p99)
    rounds = ""
    if benchmark.stats is not None:  # None when benchmarks are disabled (the test run)
        # The same run's round median (with the waiting thread's wake-up), for comparison.
        benchmark.extra_info["round_median_ns"] = benchmark.stats.stats.median * 1e9
        rounds = f"; round median {benchmark.stats.stats.median * 1e6:.1f} us"
    print(
        f"\n  push to hand-off: p50 {p50 / 1e3:.1f} us, p99 {p99 / 1e3:.1f} us "
        f"({len(ns)} trips{rounds})"
    )


def test_live_tick_to_order(benchmark: Any) -> None:
    """A round is one trip; its time also holds the wake-up of the thread that waits for
    the hand-off (the venue adapter's side), so the table reports the p50 and the p99 of
    the single ticks' push-to-hand-off latencies (``extra_info``), not the round's median."""
    node = TickToOrder(None)
    try:
        benchmark.pedantic(node.trip, rounds=TRIPS, warmup_rounds=200, iterations=1)
    finally:
        node.close()
    _report(benchmark, node.latencies)


def test_live_tick_to_order_logged(benchmark: Any, tmp_path: Path) -> None:
    """The same, with each batch appended to the log before its order leaves."""
    from admf.log import EventLog, LogOptions

    with EventLog.create(tmp_path, None, options=LogOptions(fsync="never")) as log:
        node = TickToOrder(log)
        try:
            benchmark.pedantic(node.trip, rounds=TRIPS // 4, warmup_rounds=50, iterations=1)
        finally:
            node.close()
    _report(benchmark, node.latencies)


def test_live_market_data_throughput(benchmark: Any) -> None:
    """Quotes pushed by a producer thread as fast as it can (never conflated: the producer
    waits for room), applied one by one to a strategy's ``on_quote``; ns per quote."""

    def one_session() -> None:
        inbox = Inbox(1 << 16)
        spec = LiveSpec(
            strategy=CountQuotes,  # type: ignore[arg-type]
            symbols=("X",),
            data_adapter="replay",
        )
        node, _ = build_live_node(spec, "bench", None, inbox.fill)
        kernel = threading.Thread(target=node.run)
        kernel.start()
        quote = _quote(inbox, 0)
        push = inbox.push
        for _ in range(QUOTES):
            push(quote)
        inbox.close()
        kernel.join()
        assert node.strategy.quotes == QUOTES  # type: ignore[attr-defined]
        assert inbox.conflated == 0

    benchmark.extra_info["elements"] = QUOTES
    benchmark.pedantic(one_session, rounds=3, iterations=1)
    if benchmark.stats is not None:  # None when benchmarks are disabled (the test run)
        rate = QUOTES / benchmark.stats.stats.median
        print(f"\n  {rate / 1e6:.2f}M quotes/s")


def test_live_loopback_round_trip(benchmark: Any) -> None:
    """An order request through the ``alpaca`` adapter to ``admf exchange serve`` on
    loopback, to its fill received over trade_updates (market orders on quote data, which
    fill at once)."""
    from admf.exchange import Credentials, ExchangeConfig, ExchangeServer
    from admf.live.adapter import AdapterContext
    from admf.live.alpaca import AlpacaExecution, AlpacaSettings
    from admf.live.outbox import Command
    from admf.live.tracker import OrderTracker
    from tests.live.conftest import DATA as TEST_DATA
    from tests.live.conftest import KEY, SECRET, alpaca_options

    orders = 300
    latencies: list[int] = []

    async def session() -> None:
        config = ExchangeConfig(data=(str(TEST_DATA / "usdjpy-quotes-100.csv"),), paused=True)
        async with ExchangeServer(config, [(Credentials(KEY, SECRET), None)]) as server:
            server.step(20)
            inbox = Inbox(1 << 12)
            tracker = OrderTracker("admf-bench", inbox)
            options = alpaca_options(server)  # type: ignore[arg-type]
            options.update(key_id=KEY, secret_key=SECRET, rate_per_minute=1_000_000)
            settings = AlpacaSettings(**options)
            adapter = AlpacaExecution(AdapterContext(inbox, ["USDJPY"], {}, tracker), settings)
            await adapter.connect()
            task = asyncio.get_running_loop().create_task(adapter.run())
            await asyncio.sleep(0.3)
            inbox.queue.pop_batch()
            for i in range(1, orders + 1):
                side = 1 if i % 2 else 2
                command = Command(
                    i, 20, i, f"admf-bench-{i}", 1, side, 1000 * 10**9, 0, 0, True, False, False
                )
                start = time.perf_counter_ns()
                adapter.send([command])
                while True:
                    batch = inbox.queue.pop_batch()
                    if len(batch) and (batch["kind"] == Kind.FILL).any():
                        break
                    await asyncio.sleep(0)
                latencies.append(time.perf_counter_ns() - start)
            task.cancel()
            await adapter.disconnect()

    def run() -> float:
        asyncio.run(session())
        return float(np.median(latencies[-orders:]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    ns = np.array(latencies[orders // 10 :])
    p50, p99 = (float(np.percentile(ns, q)) for q in (50, 99))
    benchmark.extra_info.update(p50_ns=p50, p99_ns=p99, elements=orders)
    print(f"\n  order to fill over loopback: p50 {p50 / 1e6:.2f} ms, p99 {p99 / 1e6:.2f} ms")
