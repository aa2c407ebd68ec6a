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
from typing import Any, Final

import numpy as np
import pyarrow as pa

from admf.book import SimVenue

# Re-exported: callers (replay, tests) import them from here.
from admf.data.source import ReadOptions as ReadOptions
from admf.data.source import Source as Source
from admf.data.source import load_source as load_source
from admf.errors import AdmfError, SettingError
from admf.events import SCALE, EventArray, Kind, Side, empty_events
from admf.kernel import Audit, Context, Kernel, OrderStage, Payload, Validation
from admf.metrics import TRADE_DTYPE, Summary, TradeArray
from admf.metrics import summarize as summarize_metrics
from admf.pipeline import OrderPipeline
from admf.portfolio import Portfolio, notional
from admf.risk import RiskEngine, RiskLimits
from admf.strategy import HANDLER_KINDS, Strategy, overridden_handlers
from admf.summary import RunSummary, summarize_run, unhandled_warning
from admf.venue import BarVenue, BookVenue, ExecutionRouter, FeeModel, SlippageModel

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
}
"""The accepted range of every numeric setting (risk limits may also be None: no limit)."""
SETTING_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "fill_at": ("next_open", "close"),
    "on_error": ("continue", "stop"),
}


def _accepted(spec: _Range) -> str:
    low, high, low_in, high_in, what = spec
    return (
        f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'} ({what}), "
        "a finite number"
    )


def check_settings(settings: BacktestSettings) -> None:
    """Raises ``SettingError`` naming the first setting outside its accepted values."""
    for name, spec in SETTING_RANGES.items():
        owner: Any = settings
        field = name
        if name.startswith("risk."):
            owner, field = settings.risk, name[5:]
        value = getattr(owner, field)
        if value is None and owner is not settings:
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
        if getattr(settings, name) not in choices:
            raise SettingError(name, getattr(settings, name), " or ".join(map(repr, choices)))


@dataclasses.dataclass(frozen=True)
class BacktestSettings:
    """How a backtest fills, charges and limits. Amounts in currency units. Every setting is
    checked when the settings are made (``SETTING_RANGES``, ``SETTING_CHOICES``): a value out
    of range, NaN or infinite is a ``SettingError`` naming it and its accepted values."""

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

    def __post_init__(self) -> None:
        check_settings(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BacktestSettings:
        values = dict(values)
        values["risk"] = RiskLimits(**values.get("risk", {}))
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

    @property
    def statistics(self) -> Summary | None:
        """The performance statistics (``summary.statistics``), None without any."""
        return self.summary.statistics

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
        """Round trips (see `round_trips`), with prices, quantities and P&L as floats."""
        t = round_trips(self.of_kind(Kind.FILL))
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
        curve = equity_curve(self.events, self.portfolio.initial_cash)
        return pa.table(
            {
                "ts": pa.array(curve["ts"], pa.timestamp("ns", tz="UTC")),
                "equity": curve["equity"],
                "cash": curve["cash"],
                "exposure": curve["exposure"],
            }
        )

    def table(self) -> pa.Table:
        """Every event of the run as an Arrow table of ``EVENT_SCHEMA``."""
        from admf.events import to_record_batch

        return pa.Table.from_batches([to_record_batch(self.events)])


def round_trips(fills: EventArray) -> TradeArray:
    """Round trips from fills in seq order, per instrument, as a ``metrics.TRADE_DTYPE``
    array: a position opened from flat and closed back to flat (a flip closes one trip and
    opens the next). Entry and exit prices are volume-weighted; fees and the net P&L are
    exact fixed point."""
    rows: list[tuple[int, ...]] = []
    trips: dict[int, dict[str, int]] = {}
    for f in fills:
        inst, ts, price, fee = int(f["instrument"]), int(f["ts"]), int(f["price"]), int(f["aux"])
        signed = int(f["qty"]) if f["side"] == Side.BUY else -int(f["qty"])
        while signed:
            trip = trips.get(inst)
            if trip is None or (trip["pos"] > 0) == (signed > 0):
                if trip is None:
                    trip = trips[inst] = dict.fromkeys(
                        ("pos", "in_value", "in_qty", "out_value", "out_qty", "fees"), 0
                    )
                    trip["ts"] = ts
                trip["pos"] += signed
                trip["in_value"] += price * abs(signed)
                trip["in_qty"] += abs(signed)
                trip["fees"] += fee
                break
            closing = min(abs(trip["pos"]), abs(signed))
            direction = 1 if trip["pos"] > 0 else -1
            trip["pos"] -= closing * direction
            trip["out_value"] += price * closing
            trip["out_qty"] += closing
            trip["fees"] += fee
            fee = 0
            signed += closing * direction
            if trip["pos"] == 0:
                gross = notional(1, (trip["out_value"] - trip["in_value"]) * direction)
                rows.append(
                    (
                        trip["ts"],
                        ts,
                        inst,
                        int(Side.BUY if direction > 0 else Side.SELL),
                        trip["in_qty"],
                        trip["in_value"] // trip["in_qty"],
                        trip["out_value"] // trip["out_qty"],
                        trip["fees"],
                        gross - trip["fees"],
                    )
                )
                del trips[inst]
    return np.array(rows, dtype=TRADE_DTYPE)


MARK_KINDS = (Kind.BAR, Kind.TRADE, Kind.QUOTE, Kind.BOOK_EXECUTE)


def equity_curve(events: EventArray, initial_cash: int) -> dict[str, np.ndarray]:
    """Equity at each mark (bar close, trade price, quote mid), in floats: cash after every
    fill so far plus positions marked at each instrument's last price. Computed after the
    run from the log, with no per-bar work during it."""
    kinds = events["kind"]
    marks = events[np.isin(kinds, [int(k) for k in MARK_KINDS])]
    fills = events[kinds == Kind.FILL]
    n = len(marks)
    if n == 0:
        return {k: np.zeros(0) for k in ("ts", "equity", "cash", "exposure")}
    price = marks["price"].astype(np.float64) / SCALE
    quotes = marks["kind"] == Kind.QUOTE
    price[quotes] = (marks["price"][quotes] + marks["aux"][quotes]) / 2 / SCALE
    # State after each fill (exact integers), then looked up at each mark by seq.
    signed = np.where(fills["side"] == Side.BUY, 1, -1) * fills["qty"].astype(np.float64) / SCALE
    cash_step = -signed * fills["price"] / SCALE - fills["aux"] / SCALE
    cash_after = initial_cash / SCALE + np.concatenate([[0.0], np.cumsum(cash_step)])
    # Every fill caused by a mark comes before the next mark: count fills before each next mark.
    next_seq = np.concatenate([marks["seq"][1:], [np.iinfo(np.uint64).max]])
    fills_done = np.searchsorted(fills["seq"], next_seq, side="left")
    cash = cash_after[fills_done]
    value = np.zeros(n)
    exposure = np.zeros(n)
    for inst in np.unique(marks["instrument"]):
        mine = marks["instrument"] == inst
        idx = np.where(mine, np.arange(n), -1)
        last = np.maximum.accumulate(idx)
        last_price = np.where(last >= 0, price[np.maximum(last, 0)], 0.0)
        f_mine = fills["instrument"] == inst
        pos_after = np.concatenate([[0.0], np.cumsum(np.where(f_mine, signed, 0.0))])
        pos = pos_after[fills_done]
        value += pos * last_price
        exposure += np.abs(pos) * last_price
    return {
        "ts": marks["ts"].copy(),
        "equity": cash + value,
        "cash": cash,
        "exposure": exposure,
    }


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
    """Wires and runs one kernel; the building block of backtests and replays. ``books``
    maps the instruments traded on the book venue to their tick size."""
    config = strategy_cls.make_config(params)
    kernel = Kernel(sources, seed=settings.seed, on_error=settings.on_error, sink=sink)
    kernel.progress = progress
    portfolio = Portfolio(round(settings.initial_cash * SCALE))
    venue = BarVenue(
        kernel,
        FeeModel(settings.fee_rate, settings.fee_per_unit, settings.fee_minimum),
        SlippageModel(settings.slippage_bps),
        fill_at=settings.fill_at,
    )
    risk = RiskEngine(settings.risk, portfolio, kernel.core.last_price)
    execution: OrderStage = venue
    book_venues: dict[int, SimVenue] = {}
    if books:
        for instrument, tick in sorted(books.items()):
            book_venues[instrument] = SimVenue(
                tick,
                instrument,
                maker_fee=round(settings.maker_fee * SCALE),
                taker_fee=round(settings.taker_fee * SCALE),
                latency_to_venue=settings.latency_to_venue_ns,
                latency_to_strategy=settings.latency_to_strategy_ns,
            )
        book_venue = BookVenue(kernel, book_venues)
        execution = ExecutionRouter(dict.fromkeys(book_venues, book_venue), venue)
    chosen: dict[str, OrderStage] = {
        "validation": Validation(instruments),
        "risk": risk,
        "execution": execution,
        "audit": Audit(),
    }
    chosen.update(stages or {})
    # Order matters: the venue (subscribed first, when it was made) fills pending orders on a
    # bar before the strategy sees it; the portfolio folds a fill before the strategy hears
    # of it.
    kernel.subscribe(Kind.FILL, portfolio.apply, "portfolio")
    pipeline = OrderPipeline(kernel, [chosen[name] for name in chosen])
    ctx = Context(kernel, portfolio, instruments[0] if instruments else 0, book_venues)
    strategy = strategy_cls(config, ctx)
    for handler in overridden_handlers(strategy):
        for kind_name in HANDLER_KINDS[handler]:
            kernel.subscribe(
                Kind[kind_name], getattr(strategy, handler), f"{strategy_cls.__name__}.{handler}"
            )
    kernel.add_component(pipeline)
    kernel.add_component(strategy)
    kernel.run()
    return kernel, portfolio


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
    read: ReadOptions | None = None,
) -> BacktestResult:
    """Runs ``strategy`` over the data files; see the module docstring. ``progress`` shows a
    progress bar on the terminal; ``read`` says how to read the files (time zone, session
    close, column mapping)."""
    params = dict(params or {})
    settings = settings or BacktestSettings()
    if not data:
        raise AdmfError("a backtest needs at least one data file")
    strategy_cls = resolve_strategy(strategy)
    # Parameters are checked before anything is created: a bad one leaves no run behind.
    strategy_cls.make_config(params)
    sources = [load_source(path, i + 1, read) for i, path in enumerate(data)]
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


def metric_inputs(
    events: EventArray, initial_cash: int
) -> tuple[tuple[np.ndarray, np.ndarray], TradeArray, tuple[np.ndarray, np.ndarray]]:
    """What ``admf.metrics`` and ``admf.report`` take, from a run's events: the equity curve
    in fixed point, the round trips and the position step function."""
    curve = equity_curve(events, initial_cash)
    if len(curve["ts"]) < 2:
        raise AdmfError("the run has fewer than 2 market data points: no statistics")
    equity = np.round(curve["equity"] * SCALE).astype(np.int64)
    trades = round_trips(events[events["kind"] == Kind.FILL])
    return (curve["ts"], equity), trades, positions_of(events)


def run_statistics(events: EventArray, initial_cash: int) -> Summary:
    """The metrics of a run from its events (see ``admf.metrics``)."""
    return summarize_metrics(*metric_inputs(events, initial_cash))


def positions_of(events: EventArray) -> tuple[np.ndarray, np.ndarray]:
    """The step function of the total signed position, from the fills."""
    fills = events[events["kind"] == Kind.FILL]
    signed = np.where(fills["side"] == Side.BUY, 1, -1) * fills["qty"]
    return fills["ts"].astype(np.int64), np.cumsum(signed).astype(np.int64)


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
        result.portfolio.initial_cash,
        result.output_hash,
        stopped=result.kernel.stopped,
        warnings=tuple(warnings),
    )
