"""The HTML tear sheet of a run: one self-contained file that opens offline.

``write_report(path, equity, trades, positions, title, summary)`` writes a summary table, the
equity curve, the drawdown, a monthly returns heatmap with its table, the exposure (position
over time) and the trade list. The figures are Plotly charts; plotly.js is embedded in the
file (``include_plotlyjs=True``), so the page loads no URL and works without a network.

Inputs are those of ``admf.metrics`` (plain int64 arrays, pyarrow tables or numpy structured
arrays in the engine's fixed-point units); ``summary`` defaults to ``metrics.summarize`` of
the same inputs. Long curves are thinned for plotting (the minimum and maximum of each of a
few thousand buckets are kept, so drawdowns stay visible); the statistics use every point.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go  # type: ignore[import-untyped]

from admf.events import SCALE, Side
from admf.metrics import (
    Summary,
    drawdown,
    equity_curve,
    in_market,
    monthly_returns,
    position_series,
    summarize,
    trade_array,
)

I64 = npt.NDArray[np.int64]

PLOT_POINTS: Final[int] = 5_000
"""Target number of points per plotted curve."""

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
.note { color: #666; font-size: 0.85em; }
"""


def _iso(ns: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    out: npt.NDArray[np.str_] = np.datetime_as_string(ns.astype("datetime64[ns]"), unit="ms")
    return out


def _iso1(ns: int) -> str:
    text = str(np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="s")).replace("T", " ")
    return text[:-9] if text.endswith(" 00:00:00") else text


def fixed_str(value: int) -> str:
    """A fixed-point integer as an exact decimal string (no float rounding)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(int(value)), SCALE)
    text = f"{whole:,}.{frac:09d}".rstrip("0").rstrip(".")
    return sign + text


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


def _equity_figure(ts: I64, equity: I64) -> go.Figure:
    idx = _thin(equity)
    fig = go.Figure(go.Scatter(x=_iso(ts[idx]), y=equity[idx] / SCALE, mode="lines", name="equity"))
    fig.update_layout(title="Equity", xaxis={"type": "date"}, yaxis={"title": "equity"})
    return fig


def _drawdown_figure(ts: I64, equity: I64) -> go.Figure:
    dd = drawdown(equity) * 100
    idx = _thin(dd)
    fig = go.Figure(
        go.Scatter(
            x=_iso(ts[idx]),
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
    ts: I64, positions: tuple[I64, I64] | None, held: npt.NDArray[np.float64] | None
) -> go.Figure:
    if positions is not None and len(positions[0]):
        pts, qty = positions
        x, y, name = pts, qty / SCALE, "position"
        idx = _thin(y)
        x, y = x[idx], y[idx]
    else:
        x, y, name = ts, (held if held is not None else np.zeros(len(ts))), "in market"
    fig = go.Figure(go.Scatter(x=_iso(x), y=y, mode="lines", line_shape="hv", name=name))
    fig.update_layout(title="Exposure", xaxis={"type": "date"}, yaxis={"title": name})
    return fig


def _summary_table(summary: Summary | Mapping[str, Any]) -> str:
    items = summary.formatted() if isinstance(summary, Summary) else summary
    rows = "".join(
        f'<tr><td class="label">{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>'
        for k, v in items.items()
    )
    return f'<table class="summary" id="admf-summary">{rows}</table>'


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


def _trade_table(trades: npt.NDArray[np.void], max_rows: int) -> str:
    head = (
        '<tr><th>#</th><th>instrument</th><th class="label">side</th><th>qty</th>'
        '<th class="label">entry</th><th>entry price</th><th class="label">exit</th>'
        "<th>exit price</th><th>fees</th><th>P&amp;L</th><th>return</th></tr>"
    )
    rows = []
    for i, t in enumerate(trades[:max_rows], start=1):
        qty, entry_price, pnl = int(t["qty"]), int(t["entry_price"]), int(t["pnl"])
        cost = abs(qty) / SCALE * entry_price / SCALE
        side = "long" if int(t["side"]) == Side.BUY else "short"
        pnl_cls = "pos" if pnl > 0 else "neg" if pnl < 0 else ""
        rows.append(
            f'<tr class="trade"><td>{i}</td><td>{int(t["instrument"])}</td>'
            f'<td class="label">{side}</td><td>{fixed_str(qty)}</td>'
            f'<td class="label">{_iso1(int(t["entry_ts"]))}</td><td>{fixed_str(entry_price)}</td>'
            f'<td class="label">{_iso1(int(t["exit_ts"]))}</td>'
            f"<td>{fixed_str(int(t['exit_price']))}</td><td>{fixed_str(int(t['fees']))}</td>"
            f'<td class="{pnl_cls}">{fixed_str(pnl)}</td>'
            + (_pct_cell(pnl / SCALE / cost) if cost > 0 else "<td></td>")
            + "</tr>"
        )
    note = (
        f'<p class="note">The first {max_rows:,} of {len(trades):,} trades.</p>'
        if len(trades) > max_rows
        else ""
    )
    return f'<table id="admf-trades">{head}{"".join(rows)}</table>{note}'


def build_report(
    equity: Any,
    trades: Any = None,
    positions: Any = None,
    title: str = "admf report",
    summary: Summary | Mapping[str, Any] | None = None,
    *,
    periods_per_year: float | None = None,
    max_trade_rows: int = 10_000,
) -> str:
    """The tear sheet as one HTML string (see ``write_report``)."""
    ts, values = equity_curve(equity)
    trade_rows = trade_array(trades)
    pos = position_series(positions)
    if summary is None:
        summary = summarize((ts, values), trade_rows, pos, periods_per_year=periods_per_year)
    held = in_market(ts, pos, trade_rows)
    held_points = None if held is None else np.append(held, held[-1] if len(held) else 0.0)
    years, table = monthly_returns(ts, values)
    figures = [
        _div(_equity_figure(ts, values), "admf-equity", first=True),
        _div(_drawdown_figure(ts, values), "admf-drawdown", first=False),
        _div(_monthly_figure(years, table), "admf-monthly", first=False),
        _div(_exposure_figure(ts, pos, held_points), "admf-exposure", first=False),
    ]
    sections: Sequence[str] = (
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">{len(ts):,} equity points, {len(trade_rows):,} trades</p>',
        "<h2>Summary</h2>",
        _summary_table(summary),
        "<h2>Equity</h2>",
        figures[0],
        "<h2>Drawdown</h2>",
        figures[1],
        "<h2>Monthly returns</h2>",
        figures[2],
        _monthly_table(years, table),
        "<h2>Exposure</h2>",
        figures[3],
        "<h2>Trades</h2>",
        _trade_table(trade_rows, max_trade_rows),
    )
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
    *,
    periods_per_year: float | None = None,
    max_trade_rows: int = 10_000,
) -> Path:
    """Writes the tear sheet to ``path`` and returns the path.

    ``equity`` is ``(ts, equity)`` int64 arrays (ns UTC, fixed-point money) or a table with
    those columns; ``trades`` a ``metrics.TRADE_DTYPE`` array or table (or None);
    ``positions`` ``(ts, qty)`` arrays or a table (or None); ``summary`` a ``Summary`` or a
    mapping of label to text, computed from the inputs when None.
    """
    path = Path(path)
    page = build_report(
        equity,
        trades,
        positions,
        title,
        summary,
        periods_per_year=periods_per_year,
        max_trade_rows=max_trade_rows,
    )
    path.write_text(page, encoding="utf-8")
    return path
