"""The HTML tear sheet of a run: one self-contained file that opens offline.

``write_report(path, equity, trades, positions, title, summary)`` writes a summary table, the
equity curve beside a buy-and-hold benchmark of the traded instrument, the instrument's price
with the fills marked on it, the drawdown, a monthly returns heatmap with its table, the
exposure (gross, as a percentage of equity) and the trade list, with the positions still open
at the end marked at the last price. The figures are Plotly charts; plotly.js is embedded in
the file (``include_plotlyjs=True``), so the page loads no URL and works without a network.

Numbers read the same everywhere: money with two decimals and thousands separators,
percentages with two decimals, each price or quantity column with the decimals its values
need. Dates of daily (or slower) curves are trading dates (``metrics.trading_day``), so no
row or period shows a day that is not in the data.

Inputs are those of ``admf.metrics`` (plain int64 arrays, pyarrow tables or numpy structured
arrays in the engine's fixed-point units); ``summary`` defaults to ``metrics.summarize`` of
the same inputs. Long curves are thinned for plotting (the minimum and maximum of each of a
few thousand buckets are kept, so drawdowns stay visible); the statistics use every point.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go  # type: ignore[import-untyped]

from admf.errors import AdmfError
from admf.events import SCALE, Side
from admf.metrics import (
    DAILY_PERIODS_PER_YEAR,
    DAY_NS,
    MIN_ANNUALIZED_DAYS,
    Summary,
    drawdown,
    equity_curve,
    in_market,
    infer_periods_per_year,
    monthly_returns,
    position_series,
    summarize,
    trade_array,
    trading_day,
    when,
)

I64 = npt.NDArray[np.int64]

PLOT_POINTS: Final[int] = 5_000
"""Target number of points per plotted curve."""

MAX_MARKERS: Final[int] = 5_000
"""The most fills marked on the price chart (more are summarized in a note)."""

_BUY_COLOR: Final[str] = "#1a7f37"
_SELL_COLOR: Final[str] = "#cf222e"

_MONTHS: Final[list[str]] = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]

_CSS: Final[str] = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f6f6f6; }
td.label, th.label { text-align: left; }
table.summary td { min-width: 8em; }
td.pos { color: #1a7f37; } td.neg { color: #cf222e; }
tr.open td { font-style: italic; background: #fffbe6; }
.note { color: #666; font-size: 0.85em; }
"""


def _iso(ns: npt.NDArray[np.int64], daily: bool) -> npt.NDArray[np.str_]:
    """Chart x values: trading dates of a daily curve, else UTC times to the millisecond."""
    if daily:
        days: npt.NDArray[np.str_] = np.datetime_as_string(trading_day(ns).astype("datetime64[D]"))
        return days
    out: npt.NDArray[np.str_] = np.datetime_as_string(ns.astype("datetime64[ns]"), unit="ms")
    return out


def fixed_str(value: int) -> str:
    """A fixed-point integer as an exact decimal string (no float rounding)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(int(value)), SCALE)
    text = f"{whole:,}.{frac:09d}".rstrip("0").rstrip(".")
    return sign + text


NOISE: Final[float] = 1e-7
"""A value within this fraction of itself of a shorter decimal reads as that decimal: float
noise in a data file (Yahoo's 18.309999 for 18.31) does not widen a whole column."""


def decimals_needed(values: npt.NDArray[np.int64], least: int = 0) -> int:
    """The decimals that show every fixed-point value of a column (at least ``least``, and
    ignoring ``NOISE``), so that a column reads with one number of decimals."""
    values = np.asarray(values, dtype=np.int64)
    for places in range(least, 9):
        step = 10 ** (9 - places)
        rounded = (values + step // 2) // step * step
        if np.all(np.abs(values - rounded) <= np.abs(values) * NOISE):
            return places
    return 9


def fixed_fmt(value: int, places: int) -> str:
    """A fixed-point integer with ``places`` decimals and thousands separators (exact: the
    decimals come from the integer, not from a float)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(int(value)), SCALE)
    if places == 0:
        return f"{sign}{whole + (frac >= SCALE // 2):,}"
    step = 10 ** (9 - places)
    frac = (frac + step // 2) // step
    if frac == 10**places:
        whole, frac = whole + 1, 0
    return f"{sign}{whole:,}.{frac:0{places}d}"


def _thin(values: npt.NDArray[Any], target: int = PLOT_POINTS) -> npt.NDArray[np.intp]:
    """Indices to plot: every point of a short curve, else each bucket's min and max."""
    n = len(values)
    if n <= target:
        return np.arange(n)
    size = math.ceil(n / (target // 2))
    m = (n // size) * size
    blocks = values[:m].reshape(-1, size)
    base = np.arange(0, m, size)
    idx = np.concatenate(
        [
            base + blocks.argmin(axis=1),
            base + blocks.argmax(axis=1),
            np.arange(m, n),
            [0, n - 1],
        ]
    )
    return np.unique(idx)


def _div(fig: go.Figure, div_id: str, first: bool) -> str:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 40, "b": 40})
    if fig.layout.height is None:
        fig.update_layout(height=380)
    text: str = fig.to_html(
        full_html=False,
        include_plotlyjs=first,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return text


def _equity_figure(
    ts: I64, equity: I64, benchmark: tuple[I64, I64] | None, daily: bool
) -> go.Figure:
    idx = _thin(equity)
    fig = go.Figure(
        go.Scatter(x=_iso(ts[idx], daily), y=equity[idx] / SCALE, mode="lines", name="strategy")
    )
    if benchmark is not None:
        bts, bvalues = benchmark
        bidx = _thin(bvalues)
        fig.add_trace(
            go.Scatter(
                x=_iso(bts[bidx], daily),
                y=bvalues[bidx] / SCALE,
                mode="lines",
                name="buy and hold",
                line={"color": "#888", "dash": "dot"},
            )
        )
    fig.update_layout(
        title="Equity", xaxis={"type": "date"}, yaxis={"title": "equity", "tickformat": ",.0f"}
    )
    return fig


def _price_figure(
    prices: tuple[I64, I64], fills: Fills | None, name: str, daily: bool
) -> go.Figure:
    pts, price = prices
    idx = _thin(price)
    fig = go.Figure(
        go.Scatter(
            x=_iso(pts[idx], daily),
            y=price[idx] / SCALE,
            mode="lines",
            name=name,
            line={"width": 1},
        )
    )
    if fills is not None and 0 < len(fills.ts) <= MAX_MARKERS:
        for side, label, symbol, color in (
            (Side.BUY, "buy", "triangle-up", _BUY_COLOR),
            (Side.SELL, "sell", "triangle-down", _SELL_COLOR),
        ):
            mine = fills.side == side
            fig.add_trace(
                go.Scatter(
                    x=_iso(fills.ts[mine], daily),
                    y=fills.price[mine] / SCALE,
                    mode="markers",
                    name=label,
                    marker={"symbol": symbol, "color": color, "size": 9},
                    hovertemplate=f"{label} %{{y:,.4~f}}<br>%{{x}}<extra></extra>",
                )
            )
    fig.update_layout(title=f"{name}: price and fills", xaxis={"type": "date"})
    return fig


def _drawdown_figure(ts: I64, equity: I64, daily: bool) -> go.Figure:
    dd = drawdown(equity) * 100
    idx = _thin(dd)
    fig = go.Figure(
        go.Scatter(
            x=_iso(ts[idx], daily),
            y=dd[idx],
            mode="lines",
            fill="tozeroy",
            line={"color": "#cf222e"},
            name="drawdown",
        )
    )
    fig.update_layout(
        title="Drawdown", xaxis={"type": "date"}, yaxis={"title": "%", "ticksuffix": "%"}
    )
    return fig


def _monthly_figure(years: list[int], table: npt.NDArray[np.float64]) -> go.Figure:
    z = table * 100
    text = [["" if math.isnan(v) else f"{v:.1f}%" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=_MONTHS,
            y=[str(y) for y in years],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0,
            hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
            colorbar={"ticksuffix": "%"},
        )
    )
    fig.update_layout(
        title="Monthly returns",
        yaxis={"autorange": "reversed", "type": "category"},
        height=max(260, 60 + 28 * len(years)),
    )
    return fig


def _exposure_figure(
    ts: I64, exposure: npt.NDArray[np.float64], gross: bool, daily: bool
) -> go.Figure:
    idx = _thin(exposure)
    name = "gross exposure" if gross else "in the market"
    fig = go.Figure(
        go.Scatter(
            x=_iso(ts[idx], daily),
            y=exposure[idx] * 100,
            mode="lines",
            line_shape="hv",
            fill="tozeroy",
            name=name,
        )
    )
    fig.update_layout(
        title="Exposure" + (" (gross, % of equity)" if gross else " (% of the time)"),
        xaxis={"type": "date"},
        yaxis={"title": "% of equity" if gross else "%", "ticksuffix": "%"},
    )
    return fig


def _summary_table(summary: Summary | Mapping[str, Any]) -> str:
    items = summary.formatted() if isinstance(summary, Summary) else summary
    rows = "".join(
        f'<tr><td class="label">{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>'
        for k, v in items.items()
    )
    return f'<table class="summary" id="admf-summary">{rows}</table>'


_COMPARED: Final[tuple[str, ...]] = (
    "total return",
    "CAGR",
    "Sharpe",
    "Sortino",
    "annual volatility",
    "max drawdown",
    "end equity",
)


def _benchmark_table(strategy: Summary, benchmark: Summary, name: str) -> str:
    ours, theirs = strategy.formatted(), benchmark.formatted()
    rows = "".join(
        f'<tr><td class="label">{k}</td><td>{html.escape(ours[k])}</td>'
        f"<td>{html.escape(theirs[k])}</td></tr>"
        for k in _COMPARED
    )
    return (
        '<table class="summary" id="admf-benchmark"><tr><th class="label"></th>'
        f"<th>strategy</th><th>buy and hold {html.escape(name)}</th></tr>{rows}</table>"
    )


def _pct_cell(value: float) -> str:
    if math.isnan(value):
        return "<td></td>"
    cls = "pos" if value > 0 else "neg" if value < 0 else ""
    return f'<td class="{cls}">{value * 100:.2f}%</td>'


def _monthly_table(years: list[int], table: npt.NDArray[np.float64]) -> str:
    head = "".join(f"<th>{m}</th>" for m in _MONTHS)
    body = []
    for year, row in zip(years, table, strict=True):
        valid = row[~np.isnan(row)]
        total = float(np.prod(1 + valid) - 1) if len(valid) else math.nan
        cells = "".join(_pct_cell(float(v)) for v in row)
        body.append(f'<tr><td class="label">{year}</td>{cells}{_pct_cell(total)}</tr>')
    return (
        f'<table id="admf-monthly-table"><tr><th class="label">year</th>{head}<th>year</th></tr>'
        + "".join(body)
        + "</table>"
    )


def _trade_table(
    trades: npt.NDArray[np.void], open_trades: npt.NDArray[np.void], max_rows: int, daily: bool
) -> str:
    head = (
        '<tr><th>#</th><th>instrument</th><th class="label">side</th><th>qty</th>'
        '<th class="label">entry</th><th>entry price</th><th class="label">exit</th>'
        "<th>exit price</th><th>fees</th><th>P&amp;L</th><th>return</th></tr>"
    )
    shown = trades[:max_rows]
    every = np.concatenate([shown, open_trades])
    qty_places = decimals_needed(every["qty"])
    price_places = decimals_needed(np.concatenate([every["entry_price"], every["exit_price"]]), 2)
    rows = []
    for i, t in enumerate(every, start=1):
        is_open = i > len(shown)
        qty, entry_price, pnl = int(t["qty"]), int(t["entry_price"]), int(t["pnl"])
        cost = abs(qty) / SCALE * entry_price / SCALE
        side = "long" if int(t["side"]) == Side.BUY else "short"
        pnl_cls = "pos" if pnl > 0 else "neg" if pnl < 0 else ""
        exit_when = "open at the end" if is_open else when(int(t["exit_ts"]), daily)
        rows.append(
            f'<tr class="{"trade open" if is_open else "trade"}"><td>{i}</td>'
            f'<td>{int(t["instrument"])}</td><td class="label">{side}</td>'
            f"<td>{fixed_fmt(qty, qty_places)}</td>"
            f'<td class="label">{when(int(t["entry_ts"]), daily)}</td>'
            f"<td>{fixed_fmt(entry_price, price_places)}</td>"
            f'<td class="label">{exit_when}</td>'
            f"<td>{fixed_fmt(int(t['exit_price']), price_places)}</td>"
            f"<td>{fixed_fmt(int(t['fees']), 2)}</td>"
            f'<td class="{pnl_cls}">{fixed_fmt(pnl, 2)}</td>'
            + (_pct_cell(pnl / SCALE / cost) if cost > 0 else "<td></td>")
            + "</tr>"
        )
    notes = []
    if len(trades) > max_rows:
        notes.append(f"The first {max_rows:,} of {len(trades):,} trades.")
    if len(open_trades):
        notes.append(
            f"{len(open_trades):,} position{'s' if len(open_trades) > 1 else ''} still open "
            "at the end (in italics): exit price the last price, P&amp;L unrealized."
        )
    note = f'<p class="note">{" ".join(notes)}</p>' if notes else ""
    return f'<table id="admf-trades">{head}{"".join(rows)}</table>{note}'


class Fills(NamedTuple):
    """The fills to mark on the price chart: stamps, ``Side`` values and fixed-point prices."""

    ts: I64
    side: npt.NDArray[np.uint8]
    price: I64


def _pair(values: Any, what: str) -> tuple[I64, I64]:
    ts, data = (np.asarray(x) for x in values)
    if ts.shape != data.shape or ts.ndim != 1:
        raise AdmfError(f"{what}: ts and values differ in shape: {ts.shape} and {data.shape}")
    return ts.astype(np.int64), data.astype(np.int64)


def buy_and_hold(start_equity: int, prices: tuple[I64, I64]) -> tuple[I64, I64] | None:
    """The equity of putting ``start_equity`` in the instrument at its first price and holding
    it (fractional units, no costs), at every price; None without two positive prices."""
    ts, price = prices
    if len(price) < 2 or price[0] <= 0:
        return None
    curve = np.round(start_equity * (price.astype(np.float64) / float(price[0])))
    return ts, curve.astype(np.int64)


def build_report(
    equity: Any,
    trades: Any = None,
    positions: Any = None,
    title: str = "admf report",
    summary: Summary | Mapping[str, Any] | None = None,
    *,
    periods_per_year: float | None = None,
    max_trade_rows: int = 10_000,
    prices: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    fills: Fills | None = None,
    exposure: npt.ArrayLike | None = None,
    open_trades: Any = None,
    instrument: str = "the instrument",
) -> str:
    """The tear sheet as one HTML string (see ``write_report``)."""
    ts, values = equity_curve(equity)
    trade_rows = trade_array(trades)
    open_rows = trade_array(open_trades)
    pos = position_series(positions)
    stats = (
        summary
        if isinstance(summary, Summary)
        else summarize((ts, values), trade_rows, pos, periods_per_year=periods_per_year)
    )
    daily = (
        stats.periods_per_year <= DAILY_PERIODS_PER_YEAR
        if not math.isnan(stats.periods_per_year)
        else infer_periods_per_year(ts) <= DAILY_PERIODS_PER_YEAR
    )
    if exposure is not None:
        gross = np.asarray(exposure, dtype=np.float64)
        if gross.shape != ts.shape:
            raise AdmfError(f"exposure has {gross.shape} points, the equity curve {ts.shape}")
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(values > 0, gross / np.where(values > 0, values, 1), np.nan)
    else:
        held = in_market(ts, pos, trade_rows)
        share = np.append(held, held[-1]) if held is not None and len(held) else np.zeros(len(ts))
    price_series = None if prices is None else _pair(prices, "prices")
    benchmark = None if price_series is None else buy_and_hold(int(values[0]), price_series)
    years, table = monthly_returns(ts, values)
    charts = [("Equity", _equity_figure(ts, values, benchmark, daily), "admf-equity")]
    if price_series is not None and len(price_series[0]):
        charts.append(
            ("Price", _price_figure(price_series, fills, instrument, daily), "admf-price")
        )
    charts.append(("Drawdown", _drawdown_figure(ts, values, daily), "admf-drawdown"))
    # A run shorter than a month has no month to compare: the table would show one cell.
    if int(ts[-1]) - int(ts[0]) >= MIN_ANNUALIZED_DAYS * DAY_NS:
        charts.append(("Monthly returns", _monthly_figure(years, table), "admf-monthly"))
    exposure_chart = _exposure_figure(ts, share, exposure is not None, daily)
    charts.append(("Exposure", exposure_chart, "admf-exposure"))
    sections: list[str] = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">{len(ts):,} equity points, {len(trade_rows):,} closed trades'
        + (f", {len(open_rows):,} open at the end" if len(open_rows) else "")
        + "</p>",
        "<h2>Summary</h2>",
        _summary_table(summary if summary is not None else stats),
    ]
    if benchmark is not None:
        bench_stats = summarize(benchmark, periods_per_year=periods_per_year)
        sections += [
            "<h2>Strategy and buy and hold</h2>",
            _benchmark_table(stats, bench_stats, instrument),
        ]
    for i, (heading, fig, div_id) in enumerate(charts):
        sections += [f"<h2>{heading}</h2>", _div(fig, div_id, first=i == 0)]
        if div_id == "admf-price" and fills is not None and len(fills.ts) > MAX_MARKERS:
            sections.append(
                f'<p class="note">{len(fills.ts):,} fills: too many to mark; '
                f"see the trade list or the fills view.</p>"
            )
        if div_id == "admf-monthly":
            sections.append(_monthly_table(years, table))
    sections += ["<h2>Trades</h2>", _trade_table(trade_rows, open_rows, max_trade_rows, daily)]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def write_report(
    path: str | Path,
    equity: Any,
    trades: Any = None,
    positions: Any = None,
    title: str = "admf report",
    summary: Summary | Mapping[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """Writes the tear sheet to ``path`` and returns the path.

    ``equity`` is ``(ts, equity)`` int64 arrays (ns UTC, fixed-point money) or a table with
    those columns; ``trades`` a ``metrics.TRADE_DTYPE`` array or table (or None);
    ``positions`` ``(ts, qty)`` arrays or a table (or None); ``summary`` a ``Summary`` or a
    mapping of label to text, computed from the inputs when None. ``extra`` are the keywords
    of ``build_report``: ``prices`` (``(ts, price)`` of the traded instrument: the price chart
    and the buy-and-hold benchmark), ``fills`` (marked on the price), ``exposure`` (gross
    exposure, fixed point, at each equity point), ``open_trades`` (positions open at the end,
    as trades exited at the last price), ``instrument`` (its name), ``periods_per_year``,
    ``max_trade_rows``.
    """
    path = Path(path)
    page = build_report(equity, trades, positions, title, summary, **extra)
    path.write_text(page, encoding="utf-8")
    return path
