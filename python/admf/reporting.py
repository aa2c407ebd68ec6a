"""Tear sheets of runs: from a `BacktestResult` in memory or from a run's log."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from admf.backtest import BacktestResult, equity_curve, positions_of, round_trips, run_statistics
from admf.events import SCALE, EventArray, Kind
from admf.report import write_report


def _write(events: EventArray, initial_cash: int, title: str, path: str | os.PathLike[str]) -> Path:
    curve = equity_curve(events, initial_cash)
    equity = (curve["ts"], np.round(curve["equity"] * SCALE).astype(np.int64))
    trades = round_trips(events[events["kind"] == Kind.FILL])
    summary = run_statistics(events, initial_cash)
    return write_report(Path(path), equity, trades, positions_of(events), title, summary)


def write_result_report(result: BacktestResult, path: str | os.PathLike[str]) -> Path:
    """The tear sheet of a backtest result."""
    title = f"admf backtest: {result.strategy} {result.params or ''}".strip()
    return _write(result.events, result.portfolio.initial_cash, title, path)


def write_log_report(log: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """The tear sheet of a logged run, rebuilt from its events."""
    from admf.replay import read_recording

    rec = read_recording(log)
    cash: Any = rec.config.get("settings", {}).get("initial_cash", 100_000.0)
    title = f"admf run {Path(log).name}: {rec.config.get('strategy', '')}"
    return _write(rec.events, round(float(cash) * SCALE), title, path)
