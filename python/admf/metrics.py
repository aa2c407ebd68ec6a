"""Performance statistics of a run: returns, risk ratios, drawdowns, trades, exposure, turnover.

Inputs are plain arrays (or Arrow tables with the same column names), in the engine's units:

- the **equity curve**: ``ts`` (int64 ns UTC, non-decreasing) and ``equity`` (fixed-point
  money, ``SCALE`` units per whole), one point per bar or per mark;
- the **trades**: round trips as a ``TRADE_DTYPE`` array (entry and exit time, side of the
  entry, quantity, entry and exit price, fees and net P&L, all fixed point);
- the **positions**: a step function ``(ts, qty)``, the signed fixed-point position from each
  ``ts`` until the next.

Conventions (stated in ``Summary`` and the report):

- Returns are simple returns between consecutive equity points.
- Sharpe = mean / standard deviation (ddof 1) of the period returns * sqrt(periods per year), with
  a zero risk-free rate. Sortino = mean / downside deviation * sqrt(periods per year), the
  downside deviation being ``sqrt(mean(min(r, 0)²))`` over all periods (as empyrical).
- Periods per year are inferred from the bar spacing unless given: a market that trades on
  weekends (more than 10% of the bars on a Saturday or Sunday, UTC) has 365 days a year, else
  252. Intraday points: days per year * the median number of points per calendar day (UTC).
  Daily and slower: the median spacing picks 1 day (days per year), a week (52), a month
  (12), a quarter (4) or a year (1).
- CAGR over the calendar time from the first to the last point (365.25-day years).
- Annualized figures (CAGR, Sharpe, Sortino, annual volatility, annual turnover) are given
  only when the curve spans at least ``MIN_ANNUALIZED_DAYS`` (28) calendar days: compounding
  or scaling a few minutes or days to a year says nothing about the strategy (a 47-second
  gain of 0.03% compounds to an overflow). Shorter runs have them as NaN, and
  ``Summary.not_annualized`` says why; ``annualize=True`` forces them.
- A point belongs to the trading day of the nanosecond before its stamp: bars are stamped at
  their close, so a daily bar closing at midnight UTC is the day before (see ``trading_day``).
- Max drawdown is the largest fall from a running peak, as a negative fraction; its duration
  is the longest time spent below a previous peak (until the recovery or the end).
- Exposure is the fraction of equity-curve periods (from one point to the next) that start
  with a non-zero position; without a position series the trades' holding intervals are used.
- Turnover is the traded notional (entry and exit of every trade) divided by the mean equity,
  over the whole run (``turnover``) and per year (``annual_turnover``).

The statistics that need every point of the curve (returns' mean and deviations, drawdown,
mean equity, exposure from the position steps, periods per year) are computed in two passes
in Rust (``rust/src/stats.rs``, ``_core.curve_statistics``) rather than in numpy's many; they
equal the numpy formulas up to the rounding of float sums (``tests/unit/test_metrics.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from admf import _core
from admf.errors import AdmfError
from admf.events import SCALE

DAY_NS: Final[int] = 86_400 * 1_000_000_000
YEAR_NS: Final[float] = 365.25 * DAY_NS
MIN_ANNUALIZED_DAYS: Final[int] = 28
"""The shortest span (calendar days) whose figures are annualized."""
DAILY_SPACING_NS: Final[float] = 0.8 * DAY_NS
"""A median spacing at least this long makes a curve daily or slower."""
DAILY_PERIODS_PER_YEAR: Final[float] = 366
"""A curve with at most this many periods a year is daily or slower (shown as dates)."""

TRADE_DTYPE: Final[np.dtype[np.void]] = np.dtype(
    [
        ("entry_ts", "<i8"),
        ("exit_ts", "<i8"),
        ("instrument", "<u4"),
        ("side", "u1"),
        ("qty", "<i8"),
        ("entry_price", "<i8"),
        ("exit_price", "<i8"),
        ("fees", "<i8"),
        ("pnl", "<i8"),
    ]
)
"""One round-trip trade. ``side`` is the entry's ``Side`` (BUY: a long trade); ``qty`` is the
unsigned size; prices, fees and the net ``pnl`` are fixed point."""

_OPTIONAL_TRADE_FIELDS: Final[tuple[str, ...]] = ("instrument", "fees")

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
TradeArray = npt.NDArray[np.void]


@dataclass(frozen=True, slots=True)
class Summary:
    """The statistics of one run. Ratios are fractions (0.1 = 10%); NaN where undefined."""

    start_ns: int
    end_ns: int
    start_equity: float
    end_equity: float
    total_return: float
    cagr: float
    sharpe: float
    sortino: float
    annual_volatility: float
    max_drawdown: float
    max_drawdown_duration_ns: int
    max_drawdown_peak_ns: int
    max_drawdown_trough_ns: int
    trades: int
    win_rate: float
    profit_factor: float
    exposure: float
    turnover: float
    annual_turnover: float
    periods_per_year: float
    not_annualized: str | None = None
    """Why the annualized figures are NaN (a span too short), or None when they are given."""

    @property
    def daily(self) -> bool:
        """Whether the curve is daily or slower (its points are shown as dates)."""
        return self.periods_per_year <= DAILY_PERIODS_PER_YEAR

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def formatted(self) -> dict[str, str]:
        """Display strings for a summary table or the console."""

        def yearly(text: str) -> str:
            return "n/a" if self.not_annualized else text

        turnover = f"{number(self.turnover)}x"
        if not math.isnan(self.annual_turnover):
            turnover += f" ({number(self.annual_turnover)}x a year)"
        out = {
            "period": f"{when(self.start_ns, self.daily)} to {when(self.end_ns, self.daily)}"
            f" ({span(self.end_ns - self.start_ns)})",
            "start equity": number(self.start_equity),
            "end equity": number(self.end_equity),
            "total return": percent(self.total_return),
            "CAGR": yearly(percent(self.cagr)),
            "Sharpe": yearly(number(self.sharpe)),
            "Sortino": yearly(number(self.sortino)),
            "annual volatility": yearly(percent(self.annual_volatility)),
            "max drawdown": percent(self.max_drawdown),
            "max drawdown duration": span(self.max_drawdown_duration_ns),
            "trades": f"{self.trades:,}",
            "win rate": percent(self.win_rate),
            "profit factor": number(self.profit_factor),
            "exposure": percent(self.exposure),
            "turnover": turnover,
        }
        if self.not_annualized:
            out["annualized figures"] = f"n/a: {self.not_annualized}"
        else:
            out["periods per year"] = number(self.periods_per_year, 0)
        return out


def percent(x: float) -> str:
    """A fraction as a percentage with two decimals ("n/a" for NaN)."""
    if math.isnan(x):
        return "n/a"
    return "inf" if math.isinf(x) else f"{x * 100:,.2f}%"


def number(x: float, digits: int = 2) -> str:
    """A float with thousands separators ("n/a" for NaN)."""
    if math.isnan(x):
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:,.{digits}f}"


def trading_day(ts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The day (days since 1970-01-01, UTC) each stamp belongs to: that of the nanosecond
    before it, since bars are stamped at their close (a daily bar closing at midnight UTC
    belongs to the day before)."""
    out: npt.NDArray[np.int64] = (ts - 1) // DAY_NS
    return out


def when(ns: int, daily: bool) -> str:
    """A stamp for display: its trading date when the series is daily, else the UTC time."""
    if daily:
        return str(np.datetime64(int(trading_day(np.array([ns]))[0]), "D"))
    text = str(np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="ms")).replace("T", " ")
    return text.removesuffix(".000")


def span(ns: int) -> str:
    """A duration in the unit that reads best: seconds, minutes, hours or days."""
    seconds = ns / 1e9
    if seconds < 120:
        return f"{seconds:,.1f} seconds"
    if seconds < 7_200:
        return f"{seconds / 60:,.1f} minutes"
    if seconds < 2 * 86_400:
        return f"{seconds / 3_600:,.1f} hours"
    return f"{seconds / 86_400:,.0f} days"


def _column(data: Any, name: str) -> npt.NDArray[Any]:
    if isinstance(data, pa.Table | pa.RecordBatch):
        if name not in data.column_names:
            raise AdmfError(
                f"missing column {name!r}; columns found: {', '.join(data.column_names)}"
            )
        column = data.column(name)
        if column.null_count:
            raise AdmfError(f"column {name!r} has {column.null_count} nulls")
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        return np.asarray(column.to_numpy())
    if isinstance(data, np.ndarray) and data.dtype.names is not None:
        if name not in data.dtype.names:
            raise AdmfError(f"missing field {name!r}; fields found: {', '.join(data.dtype.names)}")
        return np.asarray(data[name])
    if isinstance(data, Mapping):
        if name not in data:
            raise AdmfError(f"missing column {name!r}; columns found: {', '.join(map(str, data))}")
        return np.asarray(data[name])
    raise AdmfError(
        f"expected a pyarrow Table, a numpy structured array or a mapping of arrays, "
        f"got {type(data).__name__}"
    )


def _has(data: Any, name: str) -> bool:
    if isinstance(data, pa.Table | pa.RecordBatch):
        return name in data.column_names
    if isinstance(data, np.ndarray):
        return name in (data.dtype.names or ())
    return isinstance(data, Mapping) and name in data


def _int64(values: npt.NDArray[Any], what: str) -> I64:
    if values.dtype.kind == "M":
        values = values.astype("datetime64[ns]").view(np.int64)
    if values.dtype.kind not in "iu":
        raise AdmfError(f"{what} must be integers (fixed point or ns), got dtype {values.dtype}")
    out: I64 = values.astype(np.int64, copy=False)
    return out


def equity_curve(equity: Any) -> tuple[I64, I64]:
    """``(ts, equity)`` int64 arrays from a ``(ts, equity)`` pair or a table with columns
    ``ts`` and ``equity``; checks lengths and time order."""
    if isinstance(equity, tuple) and len(equity) == 2:
        ts, values = (np.asarray(x) for x in equity)
    else:
        ts, values = _column(equity, "ts"), _column(equity, "equity")
    ts, values = _int64(ts, "equity ts"), _int64(values, "equity")
    if ts.ndim != 1 or ts.shape != values.shape:
        raise AdmfError(
            f"equity ts and values must be 1-D of the same length, got {ts.shape}, {values.shape}"
        )
    if len(ts) and np.any(np.diff(ts) < 0):
        raise AdmfError("equity timestamps must be in time order")
    return ts, values


def position_series(positions: Any) -> tuple[I64, I64] | None:
    """``(ts, qty)`` from a pair or a table with columns ``ts`` and ``qty``; None stays None."""
    if positions is None:
        return None
    if isinstance(positions, tuple) and len(positions) == 2:
        ts, qty = (np.asarray(x) for x in positions)
    else:
        ts, qty = _column(positions, "ts"), _column(positions, "qty")
    ts, qty = _int64(ts, "position ts"), _int64(qty, "position qty")
    if ts.shape != qty.shape:
        raise AdmfError(f"position ts and qty differ in length: {len(ts)} and {len(qty)}")
    if len(ts) and np.any(np.diff(ts) < 0):
        raise AdmfError("position timestamps must be in time order")
    return ts, qty


def trade_array(trades: Any) -> TradeArray:
    """A ``TRADE_DTYPE`` array from one, from an Arrow table or from a mapping of arrays with
    the same names (``instrument`` and ``fees`` may be left out); None gives no trades."""
    if trades is None:
        return np.zeros(0, dtype=TRADE_DTYPE)
    if isinstance(trades, np.ndarray) and trades.dtype == TRADE_DTYPE:
        return trades
    names = [n for n in TRADE_DTYPE.names or () if n not in _OPTIONAL_TRADE_FIELDS]
    names += [n for n in _OPTIONAL_TRADE_FIELDS if _has(trades, n)]
    columns = {name: _column(trades, name) for name in names}
    lengths = {len(c) for c in columns.values()}
    if len(lengths) != 1:
        raise AdmfError(f"trade columns differ in length: {sorted(lengths)}")
    out = np.zeros(lengths.pop(), dtype=TRADE_DTYPE)
    for name, values in columns.items():
        out[name] = values if name == "side" else _int64(values, f"trade {name}")
    return out


def infer_periods_per_year(ts: I64) -> float:
    """Periods per year of a series of timestamps (see the module documentation)."""
    return _core.periods_per_year(np.ascontiguousarray(ts, dtype=np.int64))


def returns(equity: npt.NDArray[Any]) -> F64:
    """Simple returns between consecutive points; NaN where the previous equity is not
    positive."""
    prev = equity[:-1].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev > 0, equity[1:] / np.where(prev > 0, prev, 1.0) - 1.0, np.nan)
    out: F64 = np.asarray(r, dtype=np.float64)
    return out


def drawdown(equity: npt.NDArray[Any]) -> F64:
    """The fall from the running peak at every point, as a fraction (0 or negative)."""
    values = equity.astype(np.float64)
    peak = np.maximum.accumulate(values) if len(values) else values
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, values / np.where(peak > 0, peak, 1.0) - 1.0, 0.0)
    out: F64 = np.asarray(dd, dtype=np.float64)
    return out


def in_market(ts: I64, positions: tuple[I64, I64] | None, trades: TradeArray) -> F64 | None:
    """For each equity period (ts[i] to ts[i+1]): 1.0 when it starts with a position."""
    if len(ts) < 2:
        return None
    starts = ts[:-1]
    if positions is not None:
        pts, qty = positions
        idx = np.searchsorted(pts, starts, side="right") - 1
        held = np.where(idx >= 0, qty[np.clip(idx, 0, None)] if len(qty) else 0, 0) != 0
        flags: F64 = held.astype(np.float64)
        return flags
    if len(trades) == 0:
        return np.zeros(len(starts))
    # Holding intervals [entry, exit) of the trades, merged by counting opens minus closes.
    entry = np.sort(trades["entry_ts"])
    exit_ = np.sort(trades["exit_ts"])
    open_count = np.searchsorted(entry, starts, side="right") - np.searchsorted(
        exit_, starts, side="right"
    )
    return (open_count > 0).astype(np.float64)


def summarize(
    equity: Any,
    trades: Any = None,
    positions: Any = None,
    *,
    periods_per_year: float | None = None,
    annualize: bool | None = None,
) -> Summary:
    """The statistics of a run from its equity curve, trades and (optionally) positions.
    ``annualize``: None annualizes when the span allows it (see the module documentation),
    True always, False never."""
    ts, values = equity_curve(equity)
    if len(ts) < 2:
        raise AdmfError(f"an equity curve needs at least 2 points, got {len(ts)}")
    trade_rows = trade_array(trades)
    steps = position_series(positions)
    # With position steps the exposure comes with the curve's statistics (one pass).
    held = in_market(ts, None, trade_rows) if steps is None else None
    qty = trade_rows["qty"].astype(np.float64) / SCALE
    notional = float(
        np.sum(np.abs(qty) * (trade_rows["entry_price"] + trade_rows["exit_price"]) / SCALE)
    )
    return _statistics(
        ts,
        values,
        trade_rows["pnl"].astype(np.float64) / SCALE,
        steps,
        held,
        notional,
        periods_per_year,
        annualize,
    )


def summary(
    ts: npt.ArrayLike,
    equity: npt.ArrayLike,
    *,
    trade_pnl: npt.ArrayLike | None = None,
    exposure: npt.ArrayLike | None = None,
    traded: float = 0.0,
    periods_per_year: float | None = None,
    annualize: bool | None = None,
) -> dict[str, Any]:
    """``summarize`` for callers holding plain arrays: ``equity`` in whole units (floats; an
    integer array is read as fixed point), ``trade_pnl`` one net P&L per trade (whole units),
    ``exposure`` the gross exposure (or any value, non-zero when in the market) at each
    equity point, ``traded`` the total traded notional. Returns ``Summary.as_dict()``."""
    stamps = _int64(np.asarray(ts), "equity ts")
    values = np.asarray(equity)
    curve = values.astype(np.float64) / SCALE if values.dtype.kind in "iu" else values
    curve = np.asarray(curve, dtype=np.float64)
    if stamps.ndim != 1 or stamps.shape != curve.shape:
        raise AdmfError(
            f"equity ts and values must be 1-D of the same length, got {stamps.shape}, "
            f"{curve.shape}"
        )
    if len(stamps) < 2:
        raise AdmfError(f"an equity curve needs at least 2 points, got {len(stamps)}")
    if np.any(np.diff(stamps) < 0):
        raise AdmfError("equity timestamps must be in time order")
    if not np.all(np.isfinite(curve)):
        raise AdmfError("equity values must be finite numbers (no NaN or infinity)")
    pnl = np.asarray([] if trade_pnl is None else trade_pnl, dtype=np.float64)
    held = None
    if exposure is not None:
        gross = np.asarray(exposure, dtype=np.float64)
        if gross.shape != curve.shape:
            raise AdmfError(f"exposure has {gross.shape} points, the equity curve {curve.shape}")
        held = (gross[:-1] != 0).astype(np.float64)
    return _statistics(
        stamps, curve, pnl, None, held, float(traded), periods_per_year, annualize
    ).as_dict()


def _statistics(
    ts: I64,
    equity: I64 | F64,
    pnl: F64,
    positions: tuple[I64, I64] | None,
    held: F64 | None,
    notional: float,
    periods_per_year: float | None,
    annualize: bool | None,
) -> Summary:
    """The statistics from the curve (int64: fixed point; float64: whole units), the trades'
    P&L, the position steps or else the in-market flags of the periods, and the traded
    notional."""
    ppy = infer_periods_per_year(ts) if periods_per_year is None else float(periods_per_year)
    if not ppy > 0:
        raise AdmfError(f"periods per year must be positive, got {ppy}")

    # Every statistic that needs all the points, in one Rust pass (`rust/src/stats.rs`).
    curve = _core.curve_statistics(
        np.ascontiguousarray(ts),
        equity if equity.flags.c_contiguous else equity.copy(),
        *(() if positions is None else (np.ascontiguousarray(p) for p in positions)),
    )
    fixed = equity.dtype.kind in "iu"
    start, end = (float(equity[i]) / SCALE if fixed else float(equity[i]) for i in (0, -1))
    total = end / start - 1.0 if start > 0 else math.nan
    length = int(ts[-1]) - int(ts[0])
    years = length / YEAR_NS
    not_annualized = None
    if annualize is False:
        not_annualized = "not asked for"
    elif annualize is None and length < MIN_ANNUALIZED_DAYS * DAY_NS:
        not_annualized = f"the run spans {span(length)}, less than {MIN_ANNUALIZED_DAYS} days"
    cagr = _cagr(start, end, years)
    sharpe = sortino = volatility = math.nan
    if curve.returns >= 2:
        std, mean = curve.std_return, curve.mean_return
        volatility = std * math.sqrt(ppy)
        if std > 0:
            sharpe = mean / std * math.sqrt(ppy)
        downside = curve.downside_deviation
        if downside > 0:
            sortino = mean / downside * math.sqrt(ppy)
        elif mean > 0:
            sortino = math.inf

    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    win_rate = len(wins) / len(pnl) if len(pnl) else math.nan
    gross_loss = -float(losses.sum())
    profit_factor = (
        float(wins.sum()) / gross_loss if gross_loss > 0 else (math.inf if len(wins) else math.nan)
    )
    if held is not None:
        exposure = float(held.mean()) if len(held) else math.nan
    else:
        exposure = curve.exposure
    mean_equity = curve.mean_equity
    turnover = notional / mean_equity if mean_equity > 0 else math.nan
    annual_turnover = turnover / years if years > 0 else math.nan
    if not_annualized is not None:
        cagr = sharpe = sortino = volatility = annual_turnover = math.nan

    return Summary(
        start_ns=int(ts[0]),
        end_ns=int(ts[-1]),
        start_equity=start,
        end_equity=end,
        total_return=total,
        cagr=cagr,
        sharpe=sharpe,
        sortino=sortino,
        annual_volatility=volatility,
        max_drawdown=curve.max_drawdown,
        max_drawdown_duration_ns=curve.max_drawdown_duration_ns,
        max_drawdown_peak_ns=curve.max_drawdown_peak_ns,
        max_drawdown_trough_ns=curve.max_drawdown_trough_ns,
        trades=len(pnl),
        win_rate=win_rate,
        profit_factor=profit_factor,
        exposure=exposure,
        turnover=turnover,
        annual_turnover=annual_turnover,
        periods_per_year=ppy,
        not_annualized=not_annualized,
    )


def _cagr(start: float, end: float, years: float) -> float:
    """Compound annual growth; NaN where undefined, and infinite where compounding a short
    run's gain over a year overflows (a minute-long run annualized)."""
    if not (years > 0 and start > 0):
        return math.nan
    if end <= 0:
        return -1.0
    try:
        return float((end / start) ** (1.0 / years) - 1.0)
    except OverflowError:
        return math.inf


def monthly_returns(ts: I64, equity: I64) -> tuple[list[int], F64]:
    """Calendar-month returns (UTC, by each point's ``trading_day``): ``(years, table)`` where
    ``table[i, m]`` is the return of month ``m + 1`` of ``years[i]`` (NaN without data). A
    month's return compares its last equity with the previous month's last (the first month:
    with the first point)."""
    if len(ts) == 0:
        return [], np.zeros((0, 12))
    months = trading_day(ts).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    last = np.flatnonzero(np.append(months[1:] != months[:-1], True))
    month_ids = months[last]
    closes = equity[last].astype(np.float64)
    previous = np.concatenate([[float(equity[0])], closes[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(previous > 0, closes / np.where(previous > 0, previous, 1.0) - 1.0, np.nan)
    first_year = int(month_ids[0] // 12) + 1970
    last_year = int(month_ids[-1] // 12) + 1970
    years = list(range(first_year, last_year + 1))
    table = np.full((len(years), 12), np.nan)
    table[month_ids // 12 + 1970 - first_year, month_ids % 12] = r
    return years, table
