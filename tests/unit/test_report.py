"""The HTML tear sheet: written, self-contained (no URL loaded), with its figures and trades."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from admf import SCALE, Side
from admf.data import read_bars
from admf.metrics import TRADE_DTYPE, summarize
from admf.report import (
    Fills,
    _thin,
    build_report,
    buy_and_hold,
    decimals_needed,
    fixed_fmt,
    fixed_str,
    write_report,
)

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
    assert fixed_fmt(int(first["pnl"]), 2) in page
    # one number of decimals per column: the P&L with 2, the prices with what they need
    places = decimals_needed(np.concatenate([trades["entry_price"], trades["exit_price"]]), 2)
    assert f"<td>{fixed_fmt(int(first['entry_price']), places)}</td>" in page
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


def values_of(encoded: Any) -> np.ndarray:
    """A Plotly array: a list, or numpy's bytes in base64 (``{"dtype", "bdata"}``)."""
    if isinstance(encoded, dict):
        return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=encoded["dtype"])
    return np.asarray(encoded)


def figure(page: str, div_id: str) -> dict[str, Any]:
    """The Plotly figure (data and layout) of one chart of a page."""
    start = page.index(f'"{div_id}",') + len(f'"{div_id}",')
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(page, page.index("[", start))
    layout, _ = decoder.raw_decode(page, page.index("{", end))
    return {"data": data, "layout": layout}


def test_benchmark_price_with_fills_exposure_and_open_trades(tmp_path: Path) -> None:
    (ts, values), trades, positions = run_on_orcl()
    bars = read_bars(ORCL)
    prices = (bars["ts"], bars["price"])
    fills = Fills(
        np.array([ts[10], ts[60]]),
        np.array([Side.BUY, Side.SELL], np.uint8),
        bars["price"][[10, 60]],
    )
    gross = np.zeros(len(ts))
    gross[10:60] = bars["price"][10:60] * 1000  # 1000 shares held
    still_open = trades[-1:].copy()
    still_open["exit_price"] = bars["price"][-1]
    page = build_report(
        (ts, values),
        trades[:2],
        positions,
        "sma-cross (fast=10, slow=30) on orcl",
        prices=prices,
        fills=fills,
        exposure=gross,
        open_trades=still_open,
        instrument="ORCL",
    )
    # buy and hold: the start equity in ORCL at its first close, held to the end
    want = buy_and_hold(int(values[0]), prices)
    assert want is not None
    assert want[1][-1] == round(int(values[0]) * int(bars["price"][-1]) / int(bars["price"][0]))
    equity = figure(page, "admf-equity")
    assert [trace["name"] for trace in equity["data"]] == ["strategy", "buy and hold"]
    assert 'id="admf-benchmark"' in page
    assert "buy and hold ORCL" in page
    price = figure(page, "admf-price")
    names = [trace["name"] for trace in price["data"]]
    assert names == ["ORCL", "buy", "sell"]
    assert price["data"][1]["marker"]["symbol"] == "triangle-up"
    exposure = figure(page, "admf-exposure")
    assert exposure["layout"]["yaxis"]["ticksuffix"] == "%"
    shares = values_of(exposure["data"][0]["y"])
    assert max(shares) == pytest.approx(
        max(gross[10:60] / values[10:60].astype(float)) * 100, rel=1e-9
    )
    # the open position is the last row of the trade list, marked as open
    rows = re.findall(r'<tr class="trade[^"]*">.*?</tr>', page)
    assert len(rows) == 3
    assert rows[-1].startswith('<tr class="trade open">')
    assert "open at the end" in rows[-1]
    assert "1 position still open at the end" in page
    assert "<h1>sma-cross (fast=10, slow=30) on orcl</h1>" in page
    # daily bars are shown as trading dates: no time of day, no day after the last bar
    last_day = np.datetime64(int(bars["ts"][-1]) - 1, "ns").astype("datetime64[D]")
    assert f'"{last_day}"' in page
    assert f'"{last_day + 1}"' not in page  # the stamp (midnight after) is not a day shown
    assert {len(x) for x in price["data"][0]["x"]} == {len("1995-01-03")}  # dates, no time


def test_tear_sheet_of_a_backtest_from_memory_and_from_its_log(tmp_path: Path) -> None:
    from importlib import resources

    from admf.backtest import backtest
    from admf.reporting import write_log_report, write_result_report

    data = str(resources.files("admf.sample") / "orcl-2005-2014.csv")
    result = backtest("sma-cross", [data], {"fast": 10, "slow": 30}, log_dir=tmp_path, run_id="r")
    page = write_result_report(result, tmp_path / "a.html").read_text()
    assert "<h1>Backtest of sma-cross (fast=10, slow=30) on orcl-2005-2014</h1>" in page
    assert "{" not in page[page.index("<h1>") : page.index("</h1>")]
    assert '<tr class="trade open">' in page  # the position bought in November 2014
    years = re.findall(r'<tr><td class="label">(\d{4})</td>', page)
    assert years == [str(y) for y in range(2005, 2015)]  # no 2015 row after the last bar
    assert "2005-01-03 to 2014-12-31" in page
    assert "2015-01-01" not in page
    assert result.run_dir is not None
    logged = write_log_report(result.run_dir, tmp_path / "b.html").read_text()
    assert "Run run=r: sma-cross (fast=10, slow=30) on orcl-2005-2014" in logged
    for needle in ('id="admf-benchmark"', 'id="admf-price"', '<tr class="trade open">'):
        assert needle in logged
    summary = result.summary
    assert summary is not None
    for label, text in summary.formatted().items():
        if label != "output hash":
            assert f"<td>{text}</td>" in logged, label
