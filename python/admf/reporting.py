"""Tear sheets of runs: from a `BacktestResult` in memory or from a run's log."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from admf.analysis import metric_inputs
from admf.backtest import BacktestResult
from admf.events import SCALE, EventArray
from admf.metrics import Summary
from admf.report import write_report


def _write(
    events: EventArray,
    initial_cash: int,
    title: str,
    path: str | os.PathLike[str],
    summary: Summary | None = None,
) -> Path:
    """The tear sheet; the summary is computed from the same inputs when not given."""
    equity, trades, positions = metric_inputs(events, initial_cash)
    return write_report(Path(path), equity, trades, positions, title, summary)


def write_result_report(result: BacktestResult, path: str | os.PathLike[str]) -> Path:
    """The tear sheet of a backtest result."""
    title = f"admf backtest: {result.strategy} {result.params or ''}".strip()
    return _write(result.events, result.portfolio.initial_cash_fx, title, path, result.statistics)


def write_log_report(log: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """The tear sheet of a logged run, rebuilt from its events."""
    from admf.replay import read_recording

    rec = read_recording(log)
    cash: Any = rec.config.get("settings", {}).get("initial_cash", 100_000.0)
    title = f"admf run {Path(log).name}: {rec.config.get('strategy', '')}"
    return _write(rec.events, round(float(cash) * SCALE), title, path)
