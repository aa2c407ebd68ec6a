"""A run's projections from its events: equity curve, round trips and positions, in one pass
of the portfolio's fold of fills (``rust/src/orders/analysis.rs``), all in fixed point.

- The **equity curve** has a point at every mark (bar close, trade price, quote mid, book
  execution): cash after every fill the mark caused (every fill before the next mark) plus
  each position at its instrument's last price.
- The **round trips**: a position opened from flat and closed back to flat (a flip closes one
  trip and opens the next), as a ``metrics.TRADE_DTYPE`` array; entry and exit prices are
  volume-weighted, fees and the net P&L exact.
- The **positions**: the step function ``(ts, qty)`` of the total signed position.
- The **tally**: how many events of each kind, and the risk decisions that refused an order
  (counted in the same pass: a pass over a long run's records costs as much as the fold).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from admf import _core
from admf.errors import AdmfError
from admf.events import EventArray, Kind
from admf.metrics import TRADE_DTYPE, TradeArray

I64 = npt.NDArray[np.int64]

MARK_KINDS = (Kind.BAR, Kind.TRADE, Kind.QUOTE, Kind.BOOK_EXECUTE)
"""The events that mark an instrument's price (``mark_price`` in ``rust/src/orders/analysis.rs``):
a bar's close, a trade's or a book execution's price, a two-sided quote's mid."""


class EquityCurve(NamedTuple):
    """Equity at each mark, fixed point."""

    ts: I64
    equity: I64
    cash: I64
    exposure: I64


class Steps(NamedTuple):
    """The total signed position (fixed point) from each ``ts`` on."""

    ts: I64
    qty: I64


class Tally(NamedTuple):
    """Counts of the events: ``kinds[code]`` of each kind code (``Kind``), and the ``RISK``
    decisions that refused an order (a non-zero reason code)."""

    kinds: npt.NDArray[np.uint64]
    risk_denied: int


class Analysis(NamedTuple):
    curve: EquityCurve
    trades: TradeArray
    positions: Steps
    tally: Tally


def analyze(
    events: EventArray, initial_cash_fx: int, *, cash_and_exposure: bool = True
) -> Analysis:
    """Folds a run's events (in ``seq`` order) into its equity curve, trades and positions.
    ``cash_and_exposure=False`` leaves those columns of the curve empty: the statistics need
    neither, and a long run's columns cost as much to write as the fold itself."""
    raw = np.ascontiguousarray(events).view(np.uint8)
    curve, trips, steps, tally = _core.analyze(raw, initial_cash_fx, cash_and_exposure)
    trades = np.empty(len(trips[0]), dtype=TRADE_DTYPE)
    for name, column in zip(TRADE_DTYPE.names or (), trips, strict=True):
        trades[name] = column
    return Analysis(EquityCurve(*curve), trades, Steps(*steps), Tally(*tally))


def round_trips(fills: EventArray) -> TradeArray:
    """The round trips of fills in seq order (see the module docstring)."""
    return analyze(fills, 0).trades


def equity_curve(events: EventArray, initial_cash_fx: int) -> EquityCurve:
    """The equity curve of a run's events, fixed point."""
    return analyze(events, initial_cash_fx).curve


def positions_of(events: EventArray) -> Steps:
    """The step function of the total signed position, from the fills."""
    return analyze(events[events["kind"] == Kind.FILL], 0).positions


def statistics_inputs(
    a: Analysis,
) -> tuple[tuple[I64, I64], TradeArray, tuple[I64, I64]]:
    """What ``admf.metrics`` and ``admf.report`` take from a run's analysis: the equity curve
    in fixed point, the round trips and the position step function."""
    if len(a.curve.ts) < 2:
        raise AdmfError("the run has fewer than 2 market data points: no statistics")
    return (a.curve.ts, a.curve.equity), a.trades, (a.positions.ts, a.positions.qty)
