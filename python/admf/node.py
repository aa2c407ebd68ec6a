"""The one wiring of a run: kernel, order pipeline, risk, portfolio, strategy and log sink.

A backtest, a replay, a sweep trial and a live session are the same node with different
inputs and a different execution stage:

- inputs: merged arrays (``sources``: a backtest, the recorded inputs of a replay), then,
  for a live session, batches drained from the ``EventQueue`` (``feed``);
- the order path runs in Rust inside the kernel (``KernelCore.attach_orders``: validation,
  risk, the bar venue or the book venue of an instrument with one, the portfolio's fold of
  every fill, the venue's and the input ones alike). A live node (``feed``) adds the live
  gate after risk (``KernelCore.attach_live``; ``rust/src/orders/gate.rs``), and with an
  ``external`` venue the commands that pass it are collected in Rust for the session, which
  hands them to the venue adapter once the log holds them (`admf.live.session`); without,
  the simulated venues fill them (``--exec-adapter sim``);
- a backtest with a stage replaced by a plugin (``stages``) runs the order path as Python
  stages instead (`admf.pipeline`), deciding event for event as the Rust one.

Everything (the portfolio, the order path, the strategy and its context, their
subscriptions) is built here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from admf._core import Event
from admf.book import SimVenue
from admf.errors import AdmfError
from admf.events import SCALE, EventArray, Kind, to_fixed
from admf.kernel import Audit, Feed, Kernel, OrderStage, Payload, Sink, Validation
from admf.pipeline import OrderPipeline
from admf.portfolio import Portfolio
from admf.risk import RiskEngine
from admf.strategy import HANDLER_KINDS, Context, OrderRoute, Strategy, overridden_handlers
from admf.venue import (
    BarVenue,
    BookVenue,
    ExecutionRouter,
    FeeModel,
    Instruments,
    SlippageModel,
)

if TYPE_CHECKING:
    from admf.backtest import BacktestSettings, RunSettings, SimulationSettings


@dataclasses.dataclass
class Node:
    """A wired run, ready to `run` (or already run)."""

    kernel: Kernel
    portfolio: Portfolio
    strategy: Strategy
    pipeline: OrderPipeline | None
    """The Python order path (None: the order path runs in Rust inside the kernel)."""
    context: Context
    command: Callable[[Event], None]
    """Where order commands go (what ``ctx.buy`` calls)."""

    def run(self) -> None:
        self.kernel.run()


def build_node(
    strategy_cls: type[Strategy],
    params: dict[str, Any],
    run_settings: RunSettings,
    sources: Sequence[EventArray],
    instruments: Sequence[int],
    sink: Sink | None,
    *,
    stages: dict[str, OrderStage] | None = None,
    progress: Callable[[int], None] | None = None,
    books: dict[int, int] | None = None,
    feed: Feed | None = None,
    external: bool = False,
    simulation: SimulationSettings | None = None,
) -> Node:
    """Wires one run. ``books`` maps the instruments traded on the book venue to their tick
    size; ``stages`` replace stages of the order path (which then runs as Python stages);
    ``feed`` makes it a live run (inputs after ``sources`` come from it, and the live gate
    joins the order path); ``external``: a live run's orders go to a venue adapter
    (``KernelCore.take_commands``) instead of the simulated venues. ``simulation`` says how
    the simulated venues fill, charge and delay (None: their defaults; a node whose venue is
    an adapter has none)."""
    from admf.backtest import BacktestSettings

    if feed is None and external:
        raise AdmfError("external: only a live node (with a feed) has an external venue")
    if feed is not None and stages:
        raise AdmfError(
            f"stages: a live node runs the engine's order path; replaced stages "
            f"({', '.join(sorted(stages))}) go with backtests"
        )
    settings = BacktestSettings.of(run_settings, simulation)
    config = strategy_cls.make_config(params)
    kernel = Kernel(sources, seed=settings.seed, on_error=settings.on_error, sink=sink, feed=feed)
    kernel.progress = progress
    portfolio = Portfolio(to_fixed(settings.initial_cash))
    portfolio.attach_market(kernel.core)
    specs = Instruments(
        lot=to_fixed(settings.lot_size),
        tick=1 if settings.tick_size is None else to_fixed(settings.tick_size),
        ticks=dict(books or {}),
    )
    book_venues: dict[int, SimVenue] = {}
    for instrument, tick in sorted((books or {}).items()):
        book_venues[instrument] = SimVenue(
            tick,
            instrument,
            maker_fee=round(settings.maker_fee * SCALE),
            taker_fee=round(settings.taker_fee * SCALE),
            latency_to_venue=settings.latency_to_venue_ns,
            latency_to_strategy=settings.latency_to_strategy_ns,
        )
    pipeline: OrderPipeline | None = None
    if stages:
        pipeline = _python_pipeline(
            kernel, portfolio, settings, instruments, specs, book_venues, dict(stages)
        )
        kernel.add_component(pipeline)
        route: OrderRoute = pipeline
    else:
        _rust_order_path(kernel, portfolio, settings, instruments, specs, book_venues)
        if feed is not None:
            kernel.core.attach_live(external=external)
        route = kernel.core
    ctx = Context(
        kernel, portfolio, instruments[0] if instruments else 0, book_venues, specs, route
    )
    strategy = strategy_cls(config, ctx)
    for handler in overridden_handlers(strategy):
        for kind_name in HANDLER_KINDS[handler]:
            kernel.subscribe(
                Kind[kind_name], getattr(strategy, handler), f"{strategy_cls.__name__}.{handler}"
            )
    kernel.add_component(strategy)
    return Node(kernel, portfolio, strategy, pipeline, ctx, route.command)


def _rust_order_path(
    kernel: Kernel,
    portfolio: Portfolio,
    settings: BacktestSettings,
    instruments: Sequence[int],
    specs: Instruments,
    book_venues: dict[int, SimVenue],
) -> None:
    """The engine's own order path, in Rust inside the kernel: no Python per order stage."""
    if book_venues:
        BookVenue(kernel, book_venues)  # attaches the book venues and reports their errors
    fees = _fee_model(settings)
    risk = settings.risk

    def fixed(value: float | None) -> int | None:
        return None if value is None else round(value * SCALE)

    kernel.core.attach_orders(
        portfolio,
        list(instruments),
        kernel.pending,
        fill_at=settings.fill_at,
        fee_rate=fees.rate,
        fee_per_unit_fx=round(fees.per_unit * SCALE),
        fee_minimum_fx=round(fees.minimum * SCALE),
        slippage_bps=settings.slippage_bps,
        lot_fx=specs.lot,
        max_order_qty_fx=fixed(risk.max_order_qty),
        max_notional_fx=fixed(risk.max_notional),
        max_position_fx=fixed(risk.max_position),
        max_orders_per_second=risk.max_orders_per_second,
        daily_loss_limit_fx=fixed(risk.daily_loss_limit),
        kill_switch=risk.kill_switch,
    )


def _python_pipeline(
    kernel: Kernel,
    portfolio: Portfolio,
    settings: BacktestSettings,
    instruments: Sequence[int],
    specs: Instruments,
    book_venues: dict[int, SimVenue],
    stages: dict[str, OrderStage],
) -> OrderPipeline:
    """The order path as Python stages, ``stages`` replacing some: the engine's own stages
    decide as the Rust path does, event for event."""
    venue = BarVenue(
        kernel,
        portfolio,
        _fee_model(settings),
        SlippageModel(settings.slippage_bps),
        fill_at=settings.fill_at,
        lot=specs.lot,
    )
    simulated: OrderStage = venue
    if book_venues:
        book_venue = BookVenue(kernel, book_venues)
        simulated = ExecutionRouter(dict.fromkeys(book_venues, book_venue), venue)
    # The venue (subscribed first) fills pending orders on a bar before the strategy sees it;
    # the portfolio folds a fill before the strategy hears of it.
    kernel.subscribe(Kind.FILL, portfolio.apply, "portfolio")
    chosen: dict[str, OrderStage] = {
        "validation": Validation(instruments),
        "risk": RiskEngine(settings.risk, portfolio, kernel.core.last_price),
        "execution": simulated,
        "audit": Audit(),
    }
    chosen.update(stages)
    return OrderPipeline(kernel, list(chosen.values()))


def _fee_model(settings: BacktestSettings) -> FeeModel:
    return FeeModel(settings.fee_rate, settings.fee_per_unit, settings.fee_minimum)


__all__ = [
    "Node",
    "Payload",
    "build_node",
]
