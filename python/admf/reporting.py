"""Tear sheets of runs: from a `BacktestResult` in memory or from a run's log.

The page gets what ``admf.report`` draws, taken from the run's events: the equity curve, the
round trips, the positions, the gross exposure, the traded instrument's prices and fills (the
price chart and the buy-and-hold benchmark; with several instruments, the first one traded),
the positions still open at the end (as trades exited at the last price), and the run's
summary (``admf.summary``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from admf.analysis import MARK_KINDS, analyze, round_trips, statistics_inputs
from admf.backtest import BacktestResult
from admf.events import SCALE, EventArray, Kind, Side
from admf.metrics import TRADE_DTYPE, TradeArray
from admf.report import Fills, write_report
from admf.summary import RunSummary, marked_events, summarize_run


def _prices(events: EventArray, instrument: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, price)`` of one instrument's marks (bar closes, trade prices, quote mids: the
    prices ``equity_curve`` marks at, in fixed point for the chart)."""
    mine = events[
        np.isin(events["kind"], [int(k) for k in MARK_KINDS]) & (events["instrument"] == instrument)
    ]
    price = mine["price"].copy()
    quotes = mine["kind"] == Kind.QUOTE
    price[quotes] = (mine["price"][quotes] + mine["aux"][quotes]) // 2
    return mine["ts"].astype(np.int64), price.astype(np.int64)


def open_trades(events: EventArray) -> TradeArray:
    """The positions open at the end of a run, as round trips closed at each instrument's
    last price with no fee: their P&L is unrealized."""
    fills = events[events["kind"] == Kind.FILL]
    rows = []
    for instrument in np.unique(fills["instrument"]):
        mine = fills[fills["instrument"] == instrument]
        signed = np.where(mine["side"] == Side.BUY, 1, -1) * mine["qty"].astype(object)
        position = int(signed.sum())
        ts, price = _prices(events, int(instrument))
        if position == 0 or not len(price):
            continue
        close = mine[-1:].copy()
        close["ts"], close["price"], close["aux"] = ts[-1], price[-1], 0
        close["side"] = Side.SELL if position > 0 else Side.BUY
        close["qty"] = abs(position)
        close["seq"] = np.iinfo(np.uint64).max
        rows.append(round_trips(np.concatenate([mine, close]))[-1:])
    return np.concatenate(rows) if rows else np.zeros(0, dtype=TRADE_DTYPE)


def _write(
    events: EventArray,
    initial_cash: int,
    title: str,
    path: str | os.PathLike[str],
    summary: RunSummary,
    names: Mapping[int, str],
) -> Path:
    events, _ = marked_events(events)
    analysis = analyze(events, initial_cash)
    equity, trades, positions = statistics_inputs(analysis)
    gross = analysis.curve.exposure
    fills = events[events["kind"] == Kind.FILL]
    traded = int(fills["instrument"][0]) if len(fills) else min(names, default=1)
    mine = fills[fills["instrument"] == traded]
    return write_report(
        Path(path),
        equity,
        trades,
        positions,
        title,
        summary.formatted(),
        prices=_prices(events, traded),
        fills=Fills(mine["ts"].astype(np.int64), mine["side"], mine["price"].astype(np.int64)),
        exposure=gross,
        open_trades=open_trades(events),
        instrument=names.get(traded, f"instrument {traded}"),
    )


def run_title(strategy: str, params: Mapping[str, Any], names: Mapping[int, str]) -> str:
    """``sma-cross (fast=10, slow=30) on orcl-2005-2014``."""
    settings = ", ".join(f"{k}={v}" for k, v in params.items())
    data = ", ".join(names[i] for i in sorted(names))
    return f"{strategy}" + (f" ({settings})" if settings else "") + (f" on {data}" if data else "")


def write_result_report(result: BacktestResult, path: str | os.PathLike[str]) -> Path:
    """The tear sheet of a backtest result."""
    names = {s.instrument: s.name for s in result.sources}
    return _write(
        result.events,
        result.portfolio.initial_cash_fx,
        f"Backtest of {run_title(result.strategy, result.params, names)}",
        path,
        result.summary,
        names,
    )


def write_log_report(
    log: str | os.PathLike[str], path: str | os.PathLike[str], finished: bool | None = None
) -> Path:
    """The tear sheet of a logged run, rebuilt from its events. ``finished``: whether the
    log holds its whole run, if the caller already verified it (None: verified here)."""
    from admf.log.verify import verify_log
    from admf.replay import reached_its_end, read_recording

    rec = read_recording(log)
    if finished is None:
        finished = reached_its_end(verify_log(log), rec.config)
    cash: Any = rec.config.get("settings", {}).get("initial_cash", 100_000.0)
    initial_cash = round(float(cash) * SCALE)
    names = {int(d["instrument"]): str(d["name"]) for d in rec.config.get("data", [])}
    errors = np.flatnonzero(rec.events["kind"] == Kind.ERROR)
    payloads = {int(rec.events["seq"][i]): rec.payloads[i] for i in errors}
    summary = summarize_run(rec.events, payloads, initial_cash, rec.output_hash)
    strategy = str(rec.config.get("strategy", ""))
    title = f"Run {rec.path.name}: {run_title(strategy, rec.config.get('params', {}), names)}"
    if not finished:
        last = int(rec.events["seq"][-1]) if len(rec.events) else 0
        title += f" (UNFINISHED: the run did not finish; its log stops at seq {last})"
    return _write(rec.events, initial_cash, title, path, summary, names)
