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
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Self

import numpy as np
import pyarrow as pa

from admf.analysis import Analysis, analyze

# Re-exported: callers (replay, tests) import them from here.
from admf.data.source import ReadOptions as ReadOptions
from admf.data.source import Source as Source
from admf.data.source import load_source as load_source
from admf.errors import AdmfError, SettingError
from admf.events import SCALE, EventArray, Kind, Side, empty_events
from admf.kernel import Kernel, OrderStage, Payload
from admf.metrics import Summary
from admf.portfolio import Portfolio
from admf.risk import RiskLimits
from admf.strategy import Strategy, overridden_handlers
from admf.summary import RunSummary, summarize_run, unhandled_warning
from admf.venue import (
    FILL_AT,
)

StrategySpec = str | type[Strategy]


MONEY_LIMIT: Final[float] = 1e9
"""The largest amount (cash, notional, loss limit, fee per unit) a setting accepts, in units:
fixed point holds about ±9.22e9, and a run needs room for its gains and notionals."""
LATENCY_LIMIT_NS: Final[int] = 86_400 * 1_000_000_000
"""The longest simulated latency a setting accepts (a day)."""

_Range = tuple[float, float, bool, bool, str]
"""(low, high, low included, high included, what it means)."""

SETTING_RANGES: Final[dict[str, _Range]] = {
    "initial_cash": (0.0, MONEY_LIMIT, False, True, "cash in currency units"),
    "fee_rate": (0.0, 1.0, True, False, "a fraction of notional"),
    "fee_per_unit": (0.0, MONEY_LIMIT, True, True, "currency units per unit traded"),
    "fee_minimum": (0.0, MONEY_LIMIT, True, True, "currency units per fill"),
    "slippage_bps": (0.0, 10_000.0, True, False, "basis points"),
    "maker_fee": (-1.0, 1.0, False, False, "a fraction of notional; negative is a rebate"),
    "taker_fee": (0.0, 1.0, True, False, "a fraction of notional"),
    "latency_to_venue_ns": (0, LATENCY_LIMIT_NS, True, True, "nanoseconds"),
    "latency_to_strategy_ns": (0, LATENCY_LIMIT_NS, True, True, "nanoseconds"),
    "seed": (0, 2**64 - 1, True, True, "an integer"),
    "risk.max_order_qty": (0.0, MONEY_LIMIT, False, True, "units"),
    "risk.max_notional": (0.0, MONEY_LIMIT, False, True, "currency units"),
    "risk.max_position": (0.0, MONEY_LIMIT, False, True, "units"),
    "risk.max_orders_per_second": (1, 10**9, True, True, "orders per second"),
    "risk.daily_loss_limit": (0.0, MONEY_LIMIT, False, True, "currency units"),
    "lot_size": (1e-9, MONEY_LIMIT, True, True, "units: the step of order quantities"),
    "tick_size": (1e-9, MONEY_LIMIT, True, True, "currency units: the step of limit prices"),
}
"""The accepted range of every numeric setting (risk limits and the tick size may also be None:
no limit, any price)."""
SETTING_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "fill_at": FILL_AT,
    "on_error": ("continue", "stop"),
}


def _accepted(spec: _Range) -> str:
    low, high, low_in, high_in, what = spec
    return (
        f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'} ({what}), "
        "a finite number"
    )


def check_settings(settings: RunSettings | SimulationSettings) -> None:
    """Raises ``SettingError`` naming the first setting outside its accepted values (of the
    settings ``settings`` has: run settings, simulation settings or both)."""
    for name, spec in SETTING_RANGES.items():
        owner: Any = settings
        field = name
        if name.startswith("risk."):
            if not hasattr(settings, "risk"):
                continue
            owner, field = settings.risk, name[5:]
        elif not hasattr(settings, name):
            continue
        value = getattr(owner, field)
        if value is None and (owner is not settings or field == "tick_size"):
            continue
        integral = isinstance(spec[0], int) and isinstance(spec[1], int)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingError(name, value, _accepted(spec))
        if integral and not isinstance(value, int):
            raise SettingError(name, value, _accepted(spec) + " (a whole number)")
        low, high, low_in, high_in, _ = spec
        ok = math.isfinite(value) and (value >= low if low_in else value > low)
        ok = ok and (value <= high if high_in else value < high)
        if not ok:
            raise SettingError(name, value, _accepted(spec))
    for name, choices in SETTING_CHOICES.items():
        if hasattr(settings, name) and getattr(settings, name) not in choices:
            raise SettingError(name, getattr(settings, name), " or ".join(map(repr, choices)))


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What every run has, simulated or live: its cash, risk limits, seed, what an error in
    a handler does, and the steps of order quantities and prices. Amounts in currency units.
    Every setting is checked when the settings are made (``SETTING_RANGES``,
    ``SETTING_CHOICES``): a value out of range, NaN or infinite is a ``SettingError`` naming
    it and its accepted values."""

    initial_cash: float = 100_000.0
    risk: RiskLimits = dataclasses.field(default_factory=RiskLimits)
    seed: int = 0
    on_error: str = "continue"
    lot_size: float = 1.0
    """The smallest quantity an order may have, and the step of its quantities (1: whole
    shares)."""
    tick_size: float | None = None
    """The step of limit prices (None: any price to the engine's 1e-9 resolution); book data
    brings its own tick."""

    def __post_init__(self) -> None:
        check_settings(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        values = dict(values)
        if "risk" in values:
            values["risk"] = RiskLimits(**values["risk"])
        return cls(**values)

    @property
    def run(self) -> RunSettings:
        """Only the run settings (of settings that may hold simulation settings too)."""
        return RunSettings(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(RunSettings)}
        )


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    """What a simulated venue adds: how it fills, charges and delays (a live venue does these
    by itself). Checked as `RunSettings` are."""

    fill_at: str = "next_open"
    fee_rate: float = 0.0
    fee_per_unit: float = 0.0
    fee_minimum: float = 0.0
    slippage_bps: float = 0.0
    maker_fee: float = 0.0
    """Book venue: fee rate of passive fills (negative: a rebate)."""
    taker_fee: float = 0.0
    """Book venue: fee rate of aggressive fills."""
    latency_to_venue_ns: int = 0
    """Book venue: from a command to the venue acting on it."""
    latency_to_strategy_ns: int = 0
    """Book venue: from the venue's answer to the strategy seeing it."""

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def simulation(self) -> SimulationSettings:
        """Only the simulation settings (of settings that may hold run settings too)."""
        return SimulationSettings(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(SimulationSettings)}
        )

    def simulation_set(self) -> list[str]:
        """The names of the simulation settings that differ from their defaults."""
        default = SimulationSettings()
        return [
            f.name
            for f in dataclasses.fields(SimulationSettings)
            if getattr(self, f.name) != getattr(default, f.name)
        ]


@dataclasses.dataclass(frozen=True)
class BacktestSettings(RunSettings, SimulationSettings):
    """The settings of a simulated run: `RunSettings` and `SimulationSettings` in one flat
    dataclass (its dict, and so a manifest's ``settings``, is the same as before the split:
    old logs load)."""

    @classmethod
    def of(cls, run: RunSettings, simulation: SimulationSettings | None = None) -> BacktestSettings:
        """Run settings with simulation settings (the defaults if None)."""
        sim = simulation if simulation is not None else SimulationSettings()
        values = {f.name: getattr(run, f.name) for f in dataclasses.fields(RunSettings)}
        values.update(
            {f.name: getattr(sim, f.name) for f in dataclasses.fields(SimulationSettings)}
        )
        return cls(**values)


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
    """What a backtest produced. ``summary`` holds the numbers (counts from the run's events,
    the statistics); ``summary.formatted()`` the display strings."""

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
    summary: RunSummary = dataclasses.field(init=False)
    _analysis: Analysis | None = dataclasses.field(default=None, repr=False)

    @property
    def statistics(self) -> Summary | None:
        """The performance statistics (``summary.statistics``), None without any."""
        return self.summary.statistics

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
        settings.run,
        sources,
        instruments,
        sink,
        stages=stages,
        progress=progress,
        books=books,
        simulation=settings.simulation,
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
    data: Sequence[str | os.PathLike[str] | Source],
    params: dict[str, Any] | None = None,
    settings: BacktestSettings | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
    progress: bool = False,
    read: ReadOptions | None = None,
) -> BacktestResult:
    """Runs ``strategy`` over the data files; see the module docstring. ``progress`` shows a
    progress bar on the terminal; ``read`` says how to read the files (time zone, session
    close, column mapping). A file may also come already read (a ``Source`` of
    ``load_source(path, n, read)`` for the n-th file: a sweep's worker reads its data once)."""
    params = dict(params or {})
    settings = settings or BacktestSettings()
    if not data:
        raise AdmfError("a backtest needs at least one data file")
    strategy_cls = resolve_strategy(strategy)
    # Parameters are checked before anything is created: a bad one leaves no run behind.
    strategy_cls.make_config(params)
    sources = [
        d if isinstance(d, Source) else load_source(d, i + 1, read) for i, d in enumerate(data)
    ]
    for i, s in enumerate(sources):
        if s.instrument != i + 1:
            raise AdmfError(f"{s.path}: read as instrument {s.instrument}, given as file {i + 1}")
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
            {
                "path": s.path,
                "instrument": s.instrument,
                "name": s.name,
                "tick": s.tick,
                **({"read": read.to_dict()} if read is not None else {}),
            }
            for s in sources
        ],
    }
    log = None
    if log_dir is not None:
        from admf.log import EventLog

        log = EventLog.create(log_dir, run_id, config=config, seed=settings.seed)
    collector = _Collector(log)
    bar = _ProgressBar(sum(len(s.events) for s in sources)) if progress else None
    completed = False
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
        completed = True
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            close_run_log(log, collector, completed)
    return make_result(spec, params, settings, sources, collector, kernel, portfolio, log)


def close_run_log(log: Any, collector: _Collector, completed: bool) -> None:
    """Closes a run's log, also after an interruption (Ctrl-C) or an error: every event handed
    to it so far is committed and sealed, and nothing here claims the run completed. A run
    that failed before its first event (a setting a stage refused) leaves no directory to
    show in the ``runs`` view. A completed run is marked finished once its last event is
    durable: a run killed before that replays as unfinished."""
    for future in collector.futures:
        future.result()
    if completed:
        log.mark_finished()
    log.close(seal=True)
    if not completed and not collector.chunks:
        shutil.rmtree(log.path)


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


def summarize(result: BacktestResult) -> RunSummary:
    """The summary of a run: every count from its events, the statistics, and a warning when
    the strategy received no event it handles."""
    warnings = []
    for component in result.kernel.components:
        if isinstance(component, Strategy):
            warning = unhandled_warning(
                result.strategy, overridden_handlers(component), result.events
            )
            if warning is not None:
                warnings.append(warning)
    return summarize_run(
        result.events,
        result.payloads,
        result.portfolio.initial_cash_fx,
        result.output_hash,
        stopped=result.kernel.stopped,
        warnings=tuple(warnings),
    )
