"""The one wiring of a run: kernel, order pipeline, risk, portfolio, strategy and log sink.

A backtest, a replay, a sweep trial and a live session are the same node with different
inputs and a different execution stage:

- inputs: merged arrays (``sources``: a backtest, the recorded inputs of a replay), then,
  for a live session, batches drained from the ``EventQueue`` (``feed``);
- execution: the simulated venues (bars: `BarVenue`; book data: `BookVenue`) unless an
  ``execution`` factory gives another stage (the live execution stage, which hands commands
  to a venue adapter once they are in the log).

Everything else (validation, risk, audit, the portfolio's fold of fills, the strategy and its
context) is built here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from admf.events import SCALE, EventArray, Kind, to_fixed
from admf.kernel import Audit, Context, Feed, Kernel, OrderStage, Payload, Sink, Validation
from admf.pipeline import OrderPipeline
from admf.portfolio import Portfolio
from admf.risk import RiskEngine
from admf.strategy import HANDLER_KINDS, Strategy, overridden_handlers
from admf.venue import BarVenue, BookVenue, ExecutionRouter, FeeModel, Instruments, SlippageModel

if TYPE_CHECKING:
    from admf.backtest import BacktestSettings
    from admf.book import SimVenue

ExecutionFactory = Callable[[Kernel, Portfolio, Callable[[], OrderStage]], OrderStage]
"""Builds the execution stage of a node from its kernel, its portfolio and a function that
builds the simulated venues (for a stage that wraps them)."""


@dataclasses.dataclass
class Node:
    """A wired run, ready to `run` (or already run)."""

    kernel: Kernel
    portfolio: Portfolio
    strategy: Strategy
    pipeline: OrderPipeline
    context: Context
    execution: OrderStage

    def run(self) -> None:
        self.kernel.run()


def build_node(
    strategy_cls: type[Strategy],
    params: dict[str, Any],
    settings: BacktestSettings,
    sources: Sequence[EventArray],
    instruments: Sequence[int],
    sink: Sink | None,
    *,
    stages: dict[str, OrderStage] | None = None,
    progress: Callable[[int], None] | None = None,
    books: dict[int, int] | None = None,
    feed: Feed | None = None,
    execution: ExecutionFactory | None = None,
    flush_at: int = 65_536,
) -> Node:
    """Wires one run. ``books`` maps the instruments traded on the book venue to their tick
    size; ``feed`` makes it a live run (inputs after ``sources`` come from it); ``execution``
    replaces the simulated venues."""
    config = strategy_cls.make_config(params)
    kernel = Kernel(
        sources,
        seed=settings.seed,
        on_error=settings.on_error,
        sink=sink,
        feed=feed,
        flush_at=flush_at,
    )
    kernel.progress = progress
    portfolio = Portfolio(to_fixed(settings.initial_cash))
    portfolio.attach_market(kernel.core)
    specs = Instruments(
        lot=to_fixed(settings.lot_size),
        tick=1 if settings.tick_size is None else to_fixed(settings.tick_size),
        ticks=dict(books or {}),
    )
    book_venues: dict[int, SimVenue] = {}

    def simulated() -> OrderStage:
        return _simulated_venues(kernel, portfolio, settings, specs, books, book_venues)

    stage = simulated() if execution is None else execution(kernel, portfolio, simulated)
    risk = RiskEngine(settings.risk, portfolio, kernel.core.last_price)
    chosen: dict[str, OrderStage] = {
        "validation": Validation(instruments),
        "risk": risk,
        "execution": stage,
        "audit": Audit(),
    }
    chosen.update(stages or {})
    # Order matters: the venue (subscribed first, when it was made) fills pending orders on a
    # bar before the strategy sees it; the portfolio folds a fill before the strategy hears
    # of it.
    kernel.subscribe(Kind.FILL, portfolio.apply, "portfolio")
    pipeline = OrderPipeline(kernel, [chosen[name] for name in chosen])
    ctx = Context(kernel, portfolio, instruments[0] if instruments else 0, book_venues, specs)
    strategy = strategy_cls(config, ctx)
    for handler in overridden_handlers(strategy):
        for kind_name in HANDLER_KINDS[handler]:
            kernel.subscribe(
                Kind[kind_name], getattr(strategy, handler), f"{strategy_cls.__name__}.{handler}"
            )
    kernel.add_component(pipeline)
    kernel.add_component(strategy)
    return Node(kernel, portfolio, strategy, pipeline, ctx, chosen["execution"])


def _simulated_venues(
    kernel: Kernel,
    portfolio: Portfolio,
    settings: BacktestSettings,
    specs: Instruments,
    books: dict[int, int] | None,
    book_venues: dict[int, SimVenue],
) -> OrderStage:
    """The simulation's execution stage: the bar venue, with the book venue routed in for the
    instruments in ``books`` (filled into ``book_venues``)."""
    from admf.book import SimVenue

    venue = BarVenue(
        kernel,
        portfolio,
        FeeModel(settings.fee_rate, settings.fee_per_unit, settings.fee_minimum),
        SlippageModel(settings.slippage_bps),
        fill_at=settings.fill_at,
        lot=specs.lot,
    )
    if not books:
        return venue
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
    return ExecutionRouter(dict.fromkeys(book_venues, book_venue), venue)


__all__ = ["ExecutionFactory", "Node", "Payload", "build_node"]
