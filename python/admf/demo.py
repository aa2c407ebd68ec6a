"""The demo behind ``make demo``.

``backtest_demo``: the SMA-crossover plugin backtested on bundled real ORCL daily bars; it
writes the event log and the HTML tear sheet, prints the summary, replays the run to check it
is identical, and answers SQL queries over the log.

``queue_demo`` (``admf demo --queue``): real trades through the lock-free queue. Four
producers (two threads pushing one event at a time, a thread pushing numpy batches, an asyncio
task pushing Arrow batches) share the bundled Binance BTCUSDT trades; one consumer
pops batches, checks that every producer's events arrived once and in order, and computes the
VWAP per side. Then a short benchmark against ``queue.Queue`` and ``collections.deque``.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
import time
from collections.abc import Callable
from importlib import resources

import numpy as np
from rich.console import Console
from rich.table import Table

from admf._core import EndOfStream, Event
from admf.events import EventArray, Kind, Side, empty_events, to_record_batch
from admf.queue import EventQueue

SAMPLE = "btcusdt_trades.parquet"


def sample_trades(instrument: int = 1) -> EventArray:
    """The bundled Binance trades as TRADE records (aggressor side from ``buyer_maker``)."""
    from admf.data.bars import read_trades

    with resources.as_file(resources.files("admf.sample") / SAMPLE) as path:
        return read_trades(path, instrument=instrument)


def _run_producers(q: EventQueue, parts: list[EventArray]) -> None:
    def single(part: EventArray) -> None:
        for row in part:
            q.push_wait(Event.from_bytes(row.tobytes()))

    def batched(part: EventArray) -> None:
        for start in range(0, len(part), 64):
            q.push_batch(part[start : start + 64], timeout=None)

    async def on_loop(part: EventArray) -> None:
        for start in range(0, len(part), 64):
            await q.push_async(to_record_batch(part[start : start + 64]))
            await asyncio.sleep(0)

    threads = [
        threading.Thread(target=single, args=(parts[0],)),
        threading.Thread(target=single, args=(parts[1],)),
        threading.Thread(target=batched, args=(parts[2],)),
        threading.Thread(target=lambda: asyncio.run(on_loop(parts[3]))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q.close()


def _per_pair_ns(push: Callable[[Event], object], pop: Callable[[], object], n: int) -> float:
    event = Event(Kind.TRADE, 1, price=1)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(n):
            push(event)
            pop()
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best


def queue_demo(quick: bool = False) -> None:
    console = Console()
    trades = sample_trades()
    console.print(f"[bold]admf queue demo[/]: {len(trades):,} real Binance BTCUSDT trades")
    # Producer p gets every 4th trade, tagged in `payload` so order can be checked.
    parts = []
    for p in range(4):
        part = trades[p::4].copy()
        part["payload"] = p
        part["seq"] = np.arange(len(part))
        parts.append(part)
    q = EventQueue(256)
    producer = threading.Thread(target=_run_producers, args=(q, parts))
    producer.start()
    received = []
    while True:
        try:
            received.append(q.pop_batch(timeout=None))
        except EndOfStream:
            break
    producer.join()
    events = np.concatenate(received)
    for p in range(4):
        mine = events[events["payload"] == p]
        if not np.array_equal(mine["seq"], np.arange(len(parts[p]))):
            raise RuntimeError(f"producer {p}: events lost, duplicated or reordered")
    table = Table(title="consumed through one EventQueue (capacity 256)")
    for col in ("side", "trades", "quantity", "VWAP"):
        table.add_column(col, justify="right")
    for side in (Side.BUY, Side.SELL):
        mine = events[events["side"] == side]
        qty = mine["qty"].astype(object).sum()
        notional = (mine["price"].astype(object) * mine["qty"].astype(object)).sum()
        vwap = notional / qty / 10**9 if qty else 0
        table.add_row(side.name, f"{len(mine):,}", f"{qty / 10**9:.6f}", f"{vwap:,.2f}")
    console.print(table)
    console.print(f"all {len(events):,} events arrived once, each producer's in order")

    n = 50_000 if quick else 300_000
    ours = EventQueue(1024)
    std_queue: queue.Queue[Event] = queue.Queue()
    deque: collections.deque[Event] = collections.deque()
    rows = [
        ("admf.EventQueue push+pop", _per_pair_ns(ours.push, ours.pop, n)),
        ("queue.Queue put+get", _per_pair_ns(std_queue.put_nowait, std_queue.get_nowait, n)),
        ("collections.deque append+popleft", _per_pair_ns(deque.append, deque.popleft, n)),
    ]
    bench = Table(title="one event through a queue from Python (best of 5, ns per pair)")
    bench.add_column("queue")
    bench.add_column("ns/pair", justify="right")
    bench.add_column("vs admf", justify="right")
    for name, ns in rows:
        bench.add_row(name, f"{ns:.0f}", f"{ns / rows[0][1]:.1f}x")
    batch = empty_events(65536)
    reps = 20 if quick else 100
    start = time.perf_counter_ns()
    for _ in range(reps):
        ours_batch = EventQueue(65536)
        ours_batch.push_batch(batch)
        ours_batch.pop_batch()
    per_event = (time.perf_counter_ns() - start) / (reps * len(batch))
    bench.add_row("admf.EventQueue numpy batch of 65,536", f"{per_event:.1f} /event", "")
    console.print(bench)
    console.print("full figures: make bench")


def backtest_demo(out_dir: str = "demo-output") -> None:
    """Backtest, log, report, replay and query: the main job on bundled real data."""
    import shutil
    from pathlib import Path

    from admf.backtest import backtest
    from admf.cli._results import print_result
    from admf.log import query
    from admf.replay import replay
    from admf.reporting import write_result_report

    console = Console()
    out = Path(out_dir)
    runs = out / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    with resources.as_file(resources.files("admf.sample") / "orcl-2005-2014.csv") as path:
        console.print(f"[bold]admf demo[/]: SMA(10/30) crossover on {path.name} (real ORCL bars)")
        result = backtest(
            "sma-cross", [str(path)], {"fast": 10, "slow": 30}, log_dir=runs, run_id="demo"
        )
    print_result(result, "backtest of the sma-cross plugin", "demo")
    report = write_result_report(result, out / "report.html")
    console.print(f"HTML tear sheet: {report}")
    assert result.run_dir is not None
    check = replay(result.run_dir)
    verdict = "identical" if check.identical else f"DIFFERENT: {check.first_difference}"
    console.print(f"replay of the log: {verdict} (output hash {check.replayed_hash[:16]}...)")
    sql = (
        "SELECT side, count(*) AS fills, round(avg(price), 2) AS avg_price, "
        "sum(qty) AS shares FROM fills GROUP BY side ORDER BY side"
    )
    console.print(f"[bold]SQL[/] over the log: {sql}")
    table = query(runs, sql)
    rich_table = Table()
    for name in table.column_names:
        rich_table.add_column(name, justify="right")
    for row in table.to_pylist():
        rich_table.add_row(*(str(v) for v in row.values()))
    console.print(rich_table)
    console.print(f'try: admf query {runs} "SELECT * FROM risk LIMIT 5"')
