"""The HTML tear sheet: written, self-contained (no URL loaded), with its figures and trades."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from admf import SCALE, Side
from admf.data import read_bars
from admf.metrics import TRADE_DTYPE, summarize
from admf.report import _thin, build_report, fixed_str, write_report

ORCL = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "market"
    / "backtrader__orcl-1995-2014_head300.txt"
)


def run_on_orcl() -> tuple[
    tuple[np.ndarray, np.ndarray], np.ndarray, tuple[np.ndarray, np.ndarray]
]:
    """A hand-made run on real ORCL closes: 1000 shares held over three spells."""
    bars = read_bars(ORCL)
    ts, close = bars["ts"], bars["price"]
    spells = [(10, 60), (100, 180), (220, 290)]
    shares = 1000 * SCALE
    held = np.zeros(len(ts), dtype=np.int64)
    trades = np.zeros(len(spells), dtype=TRADE_DTYPE)
    cash = 10_000 * SCALE
    equity = np.zeros(len(ts), dtype=np.int64)
    cash_at = np.full(len(ts), cash, dtype=np.int64)
    for k, (a, b) in enumerate(spells):
        held[a:b] = shares
        pnl = (int(close[b]) - int(close[a])) * 1000
        trades[k] = (ts[a], ts[b], 1, Side.BUY, shares, close[a], close[b], 0, pnl)
        cash_at[b:] += pnl
    for i in range(len(ts)):
        cost = int(close[i]) * 1000 if held[i] else 0
        entry = next((int(close[a]) * 1000 for a, b in spells if a <= i < b), 0)
        equity[i] = int(cash_at[i]) + cost - entry
    change = np.flatnonzero(np.diff(held, prepend=0) != 0)
    return (ts, equity), trades, (ts[change], held[change])


def test_report_is_written_with_figures_and_trades(tmp_path: Path) -> None:
    equity, trades, positions = run_on_orcl()
    summary = summarize(equity, trades, positions)
    path = write_report(
        tmp_path / "report.html", equity, trades, positions, "ORCL <test> & co", summary
    )
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>ORCL &lt;test&gt; &amp; co</title>" in page
    for div in ("admf-equity", "admf-drawdown", "admf-monthly", "admf-exposure"):
        assert f'id="{div}"' in page
    assert page.count("Plotly.newPlot(") == 4
    assert '"type":"heatmap"' in page
    assert "plotly.js v" in page  # the library itself is embedded
    assert page.count('<tr class="trade">') == 3
    first = trades[0]
    assert fixed_str(int(first["entry_price"])) in page
    assert fixed_str(int(first["pnl"])) in page
    assert summary.formatted()["Sharpe"] in page
    assert summary.formatted()["exposure"] in page
    assert 'id="admf-monthly-table"' in page
    assert "1995" in page


def test_report_loads_no_url(tmp_path: Path) -> None:
    equity, trades, positions = run_on_orcl()
    page = write_report(tmp_path / "r.html", equity, trades, positions).read_text()
    tags = re.findall(r"<(?:script|link|img|iframe|source|embed)\b[^>]*>", page, re.IGNORECASE)
    assert tags
    for tag in tags:
        assert not re.search(r"\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", tag, re.I), tag
    assert not re.search(r"@import\s+url\(\s*[\"']?https?:", page)


def test_summary_defaults_and_arrow_inputs(tmp_path: Path) -> None:
    (ts, values), trades, _ = run_on_orcl()
    table = pa.table({"ts": ts, "equity": values})
    trade_table = pa.table({name: trades[name] for name in trades.dtype.names})
    page = build_report(table, trade_table, None, "arrow", max_trade_rows=2)
    assert page.count('<tr class="trade">') == 2
    assert "The first 2 of 3 trades." in page
    assert summarize(table, trade_table).formatted()["win rate"] in page
    custom = build_report((ts, values), summary={"strategy": "sma <cross>"})
    assert "sma &lt;cross&gt;" in custom


def test_long_curves_are_thinned_for_plots() -> None:
    values = np.sin(np.linspace(0, 50, 1_000_000))
    idx = _thin(values, 2_000)
    assert len(idx) <= 2_010
    assert idx[0] == 0
    assert idx[-1] == len(values) - 1
    assert values[idx].min() == values.min()
    assert values[idx].max() == values.max()
    assert np.array_equal(_thin(values[:10], 2_000), np.arange(10))


@pytest.mark.parametrize(
    ("raw", "text"),
    [(0, "0"), (1, "0.000000001"), (-1_500_000_000, "-1.5"), (12_345 * SCALE, "12,345")],
)
def test_fixed_point_is_printed_exactly(raw: int, text: str) -> None:
    assert fixed_str(raw) == text
