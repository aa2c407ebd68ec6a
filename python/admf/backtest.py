"""Backtests: a strategy over historical data through the kernel, the venue and the log.

``backtest(...)`` loads the data files (bars, quotes, trades), merges them in Rust by
(ts, source, row), wires the kernel, the order pipeline (validation, risk, the bar venue,
audit), the portfolio and the strategy, runs, and returns a `BacktestResult`: every event,
the fills, round-trip trades, the equity curve and the summary, as Arrow tables for
notebooks. With ``log_dir`` every event is also appended to an `EventLog` whose manifest
records what is needed to replay the run exactly.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from admf.analysis import Analysis, analyze, statistics_inputs
from admf.errors import AdmfError
from admf.events import SCALE, EventArray, Flag, Kind, Side, empty_events, to_fixed
from admf.kernel import Kernel, OrderStage, Payload
from admf.metrics import Summary
from admf.metrics import summarize as summarize_metrics
from admf.portfolio import Portfolio
from admf.risk import RiskLimits
from admf.strategy import Strategy
from admf.venue import (
    FILL_AT,
)

StrategySpec = str | type[Strategy]


@dataclasses.dataclass(frozen=True)
class BacktestSettings:
    """How a backtest fills, charges and limits. Amounts in currency units."""

    initial_cash: float = 100_000.0
    fill_at: str = "next_open"
    fee_rate: float = 0.0
    fee_per_unit: float = 0.0
    fee_minimum: float = 0.0
    slippage_bps: float = 0.0
    risk: RiskLimits = dataclasses.field(default_factory=RiskLimits)
    seed: int = 0
    on_error: str = "continue"
    maker_fee: float = 0.0
    """Book venue: fee rate of passive fills (negative: a rebate)."""
    taker_fee: float = 0.0
    """Book venue: fee rate of aggressive fills."""
    latency_to_venue_ns: int = 0
    """Book venue: from a command to the venue acting on it."""
    latency_to_strategy_ns: int = 0
    """Book venue: from the venue's answer to the strategy seeing it."""
    lot_size: float = 1.0
    """Bar venue: the smallest quantity an order may have, and the step of its quantities
    (1: whole shares)."""
    tick_size: float | None = None
    """Bar venue: the step of limit prices (None: any price to the engine's 1e-9 resolution);
    book data brings its own tick."""

    def __post_init__(self) -> None:
        # Settings are checked before a run starts, each error naming the setting.
        def finite(name: str, value: float) -> None:
            if not math.isfinite(value):
                raise AdmfError(f"{name} must be a finite number, got {value!r}")

        finite("initial_cash", self.initial_cash)
        if self.initial_cash <= 0:
            raise AdmfError(f"initial_cash must be positive, got {self.initial_cash:g}")
        for name in ("fee_rate", "fee_per_unit", "fee_minimum", "slippage_bps"):
            value = getattr(self, name)
            finite(name, value)
            if value < 0:
                raise AdmfError(f"{name} must be >= 0, got {value:g}")
        if self.fill_at not in FILL_AT:
            raise AdmfError(f"fill_at must be one of {', '.join(FILL_AT)}, got {self.fill_at!r}")
        if self.on_error not in ("continue", "stop"):
            raise AdmfError(f"on_error must be 'continue' or 'stop', got {self.on_error!r}")
        finite("lot_size", self.lot_size)
        if self.lot_size <= 0 or to_fixed(self.lot_size) <= 0:
            raise AdmfError(f"lot_size must be positive (at least 1e-9), got {self.lot_size:g}")
        if self.tick_size is not None and (
            not math.isfinite(self.tick_size) or to_fixed(self.tick_size) <= 0
        ):
            raise AdmfError(
                f"tick_size must be positive (at least 1e-9) or unset, got {self.tick_size:g}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BacktestSettings:
        values = dict(values)
        values["risk"] = RiskLimits(**values.get("risk", {}))
        return cls(**values)


@dataclasses.dataclass
class Source:
    """One input file, read into events of one instrument. ``tick`` is set for book data
    (the instrument trades on the order book's simulated venue)."""

    path: str
    instrument: int
    name: str
    kind: Kind
    events: EventArray
    tick: int | None = None


def _lobster_source(p: Path, instrument: int) -> Source:
    """A LOBSTER message file, with the book before its first message (from the orderbook
    file beside it) as anonymous size: ``BOOK_ADD`` records with order id 0."""
    from admf.data import lobster

    book_path = p.with_name(p.name.replace("_message_", "_orderbook_"))
    if not book_path.is_file():
        raise AdmfError(f"{p}: its LOBSTER orderbook file {book_path.name} is not beside it")
    day = lobster.read_day(p, book_path, instrument=instrument)
    # The deltas with the corrections that keep the book equal to every orderbook row (a
    # level-N file never shows what happens beyond its N levels), then the trades (hidden
    # and cross executions) in time order; halts are left out.
    deltas, _ = lobster.consistent_deltas(day)
    trades = day.events[day.events["kind"] == Kind.TRADE]
    events = np.concatenate([deltas, trades])
    events = events[np.argsort(events["ts"], kind="stable")]
    events["instrument"] = instrument  # the corrections are made without one
    seed = []
    for side in (Side.BUY, Side.SELL):
        for price, size in day.initial_levels(side):
            seed.append((int(side), price, size))
    head = empty_events(len(seed))
    if seed:
        head["ts"] = events["ts"][0]
        head["kind"] = Kind.BOOK_ADD
        head["instrument"] = instrument
        head["flags"] = Flag.SNAPSHOT
        head["side"] = [s for s, _, _ in seed]
        head["price"] = [price for _, price, _ in seed]
        head["qty"] = [size for _, _, size in seed]
    name = p.name.split("_")[0]
    return Source(
        str(p), instrument, name, Kind.BOOK_ADD, np.concatenate([head, events]), lobster.TICK
    )


def load_source(path: str | os.PathLike[str], instrument: int) -> Source:
    """Reads one data file into events: bars, quotes or trades (CSV/Parquet), a LOBSTER
    message file (with its orderbook file beside it) or a Databento MBO file (``.dbn``,
    ``.dbn.zst``)."""
    from admf.data.bars import read_market_data

    p = Path(path)
    if not p.is_file():
        raise AdmfError(f"no data file at {p}")
    if "_message_" in p.name and p.suffix == ".csv":
        return _lobster_source(p, instrument)
    if p.name.endswith((".dbn", ".dbn.zst")):
        from admf.data.databento import read_mbo

        events = read_mbo(p, instrument=instrument)
        return Source(str(p), instrument, p.name.split(".")[0], Kind.BOOK_ADD, events, 1)
    kind, events = read_market_data(p, instrument=instrument)
    name = p.name.split(".")[0]
    return Source(str(p), instrument, name, Kind(kind), events)


def resolve_strategy(spec: StrategySpec) -> type[Strategy]:
    """A strategy class from a class, an entry-point name or ``module:Class``."""
    if isinstance(spec, type):
        return spec
    from admf.plugins import load

    target = load("strategies", spec)
    if not (isinstance(target, type) and issubclass(target, Strategy)):
        raise AdmfError(f"strategy {spec!r} is {target!r}, not a subclass of admf.Strategy")
    return target


@dataclasses.dataclass
class BacktestResult:
    """What a backtest produced."""

    strategy: str
    params: dict[str, Any]
    settings: BacktestSettings
    sources: list[Source]
    events: EventArray
    payloads: dict[int, Payload]
    portfolio: Portfolio
    kernel: Kernel
    output_hash: str
    run_dir: Path | None = None
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    statistics: Summary | None = None
    _analysis: Analysis | None = dataclasses.field(default=None, repr=False)

    @property
    def analysis(self) -> Analysis:
        """The equity curve, round trips and positions of the run (fixed point), folded once
        from its events and kept."""
        if self._analysis is None:
            self._analysis = analyze(self.events, self.portfolio.initial_cash_fx)
        return self._analysis

    def of_kind(self, *kinds: Kind) -> EventArray:
        return self.events[np.isin(self.events["kind"], [int(k) for k in kinds])]

    def fills(self) -> pa.Table:
        """Every fill: seq, ts, instrument, order id, side, price, qty, fee (floats for reading;
        the log keeps fixed point)."""
        f = self.of_kind(Kind.FILL)
        return pa.table(
            {
                "seq": f["seq"],
                "ts": pa.array(f["ts"], pa.timestamp("ns", tz="UTC")),
                "instrument": f["instrument"],
                "order_id": f["order_id"],
                "side": np.where(f["side"] == Side.BUY, "BUY", "SELL"),
                "price": f["price"] / SCALE,
                "qty": f["qty"] / SCALE,
                "fee": f["aux"] / SCALE,
            }
        )

    def trades(self) -> pa.Table:
        """Round trips (see `admf.analysis`), with prices, quantities and P&L as floats."""
        t = self.analysis.trades
        return pa.table(
            {
                "instrument": t["instrument"],
                "side": np.where(t["side"] == Side.BUY, "LONG", "SHORT"),
                "entry_ts": pa.array(t["entry_ts"], pa.timestamp("ns", tz="UTC")),
                "exit_ts": pa.array(t["exit_ts"], pa.timestamp("ns", tz="UTC")),
                "qty": t["qty"] / SCALE,
                "entry_price": t["entry_price"] / SCALE,
                "exit_price": t["exit_price"] / SCALE,
                "fees": t["fees"] / SCALE,
                "pnl": t["pnl"] / SCALE,
            }
        )

    def equity(self) -> pa.Table:
        """Equity at every bar/quote/trade mark: ts, equity, cash, exposure (floats)."""
        curve = self.analysis.curve
        return pa.table(
            {
                "ts": pa.array(curve.ts, pa.timestamp("ns", tz="UTC")),
                "equity": curve.equity / SCALE,
                "cash": curve.cash / SCALE,
                "exposure": curve.exposure / SCALE,
            }
        )

    def table(self) -> pa.Table:
        """Every event of the run as an Arrow table of ``EVENT_SCHEMA``."""
        from admf.events import to_record_batch

        return pa.Table.from_batches([to_record_batch(self.events)])


class _Collector:
    """Keeps every flushed chunk in memory (the kernel hands over arrays of its own), and
    forwards them to a log."""

    def __init__(self, log: Any | None) -> None:
        self.chunks: list[EventArray] = []
        self.log = log
        self.futures: list[Any] = []

    def __call__(self, events: EventArray, payloads: list[Payload | None] | None) -> None:
        self.chunks.append(events)
        if self.log is not None:
            self.futures.append(self.log.append_async(events, payloads))

    def events(self) -> EventArray:
        from admf.events import empty_events

        return np.concatenate(self.chunks) if self.chunks else empty_events(0)


def run_kernel(
    strategy_cls: type[Strategy],
    params: dict[str, Any],
    settings: BacktestSettings,
    sources: Sequence[EventArray],
    instruments: Sequence[int],
    sink: Callable[[EventArray, list[Payload | None] | None], None] | None,
    stages: dict[str, OrderStage] | None = None,
    progress: Callable[[int], None] | None = None,
    books: dict[int, int] | None = None,
) -> tuple[Kernel, Portfolio]:
    """Wires and runs one kernel; the building block of backtests and replays (the wiring
    is `admf.node.build_node`). ``books`` maps the instruments traded on the book venue to
    their tick size."""
    from admf.node import build_node

    node = build_node(
        strategy_cls,
        params,
        settings,
        sources,
        instruments,
        sink,
        stages=stages,
        progress=progress,
        books=books,
    )
    node.run()
    return node.kernel, node.portfolio


class _ProgressBar:
    """A rich progress bar fed with the number of inputs left."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.total = total
        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        )
        self.task = self.progress.add_task("events", total=total)
        self.progress.start()

    def __call__(self, remaining: int) -> None:
        self.progress.update(self.task, completed=self.total - remaining)

    def close(self) -> None:
        self.progress.stop()


def backtest(
    strategy: StrategySpec,
    data: Sequence[str | os.PathLike[str]],
    params: dict[str, Any] | None = None,
    settings: BacktestSettings | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
    progress: bool = False,
) -> BacktestResult:
    """Runs ``strategy`` over the data files; see the module docstring. ``progress`` shows a
    progress bar on the terminal."""
    params = dict(params or {})
    settings = settings or BacktestSettings()
    if not data:
        raise AdmfError("a backtest needs at least one data file")
    strategy_cls = resolve_strategy(strategy)
    sources = [load_source(path, i + 1) for i, path in enumerate(data)]
    spec = (
        strategy if isinstance(strategy, str) else f"{strategy.__module__}:{strategy.__qualname__}"
    )
    config = {
        "command": "backtest",
        "strategy": spec,
        "params": {
            k: v if isinstance(v, int | float | bool) else str(v) for k, v in params.items()
        },
        "settings": settings.to_dict(),
        "data": [
            {"path": s.path, "instrument": s.instrument, "name": s.name, "tick": s.tick}
            for s in sources
        ],
    }
    log = None
    if log_dir is not None:
        from admf.log import EventLog

        log = EventLog.create(log_dir, run_id, config=config, seed=settings.seed)
    collector = _Collector(log)
    bar = _ProgressBar(sum(len(s.events) for s in sources)) if progress else None
    try:
        kernel, portfolio = run_kernel(
            strategy_cls,
            params,
            settings,
            [s.events for s in sources],
            [s.instrument for s in sources],
            collector,
            progress=bar,
            books={s.instrument: s.tick for s in sources if s.tick is not None},
        )
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            for future in collector.futures:
                future.result()
            log.close(seal=True)
    return make_result(spec, params, settings, sources, collector, kernel, portfolio, log)


def make_result(
    strategy: str,
    params: dict[str, Any],
    settings: BacktestSettings,
    sources: list[Source],
    collector: _Collector,
    kernel: Kernel,
    portfolio: Portfolio,
    log: Any | None,
) -> BacktestResult:
    """The result of a finished run, with its summary."""
    result = BacktestResult(
        strategy=strategy,
        params=params,
        settings=settings,
        sources=sources,
        events=collector.events(),
        payloads=kernel.payloads,
        portfolio=portfolio,
        kernel=kernel,
        output_hash=kernel.output_hash,
        run_dir=log.path if log is not None else None,
    )
    result.summary = summarize(result)
    return result


def summarize(result: BacktestResult) -> dict[str, Any]:
    """The headline figures of a run, formatted, with its hash and counts."""
    out: dict[str, Any] = {}
    try:
        result.statistics = summarize_metrics(*statistics_inputs(result.analysis))
        out.update(result.statistics.formatted())
    except AdmfError as exc:
        out["statistics"] = str(exc)
    out["events"] = f"{len(result.events):,}"
    out["fills"] = f"{result.portfolio.fills:,}"
    out["errors"] = f"{result.kernel.errors:,}"
    out["output hash"] = result.output_hash
    return out
