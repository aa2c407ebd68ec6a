"""Parameter sweeps and walk-forward runs over a process pool or a Dask cluster.

``optimize(strategy, data, {"fast": [5, 10], "slow": [20, 30]}, out="SWEEP_DIR")`` runs one
backtest per parameter set and returns a `SweepResult` whose ``table`` is the result table
as Arrow. A sweep directory holds:

- ``sweep.json``: what the sweep is (strategy, data, space, seed, objective, settings);
- ``trials.jsonl``: each trial recorded durably as it finished (the resume point);
- ``sweep.parquet``: the result table, one row per trial (the ``sweep`` SQL view);
- ``runs/run=<trial>/``: each trial's event log (not with ``summaries_only``), so
  ``admf query SWEEP_DIR "SELECT run, count(*) FROM fills GROUP BY run"`` compares trials;
- walk-forward: ``windows.parquet`` (the parameters chosen per window), ``oos_equity.parquet``
  (the stitched out-of-sample curve) and ``data/`` (each window's rows).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from admf.sweep.run import (
        OBJECTIVES,
        Objective,
        SweepInterrupted,
        SweepResult,
        WalkForwardResult,
        load,
        optimize,
    )
    from admf.sweep.space import Dimension, SpaceError, parse_space
    from admf.sweep.trial import TrialJob, TrialResult, run_trial
    from admf.sweep.walkforward import WalkForwardError, parse_walk_forward

# Imported on first use: `admf query` and `admf report` look for a sweep's files through
# `admf.sweep.table` without loading the executors (pebble, Dask) and the backtest.
_HOMES: dict[str, str] = {
    "OBJECTIVES": "run",
    "Objective": "run",
    "SweepInterrupted": "run",
    "SweepResult": "run",
    "WalkForwardResult": "run",
    "load": "run",
    "optimize": "run",
    "Dimension": "space",
    "SpaceError": "space",
    "parse_space": "space",
    "TrialJob": "trial",
    "TrialResult": "trial",
    "run_trial": "trial",
    "WalkForwardError": "walkforward",
    "parse_walk_forward": "walkforward",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'admf.sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(f"admf.sweep.{home}"), name)


__all__ = [
    "OBJECTIVES",
    "Dimension",
    "Objective",
    "SpaceError",
    "SweepInterrupted",
    "SweepResult",
    "TrialJob",
    "TrialResult",
    "WalkForwardError",
    "WalkForwardResult",
    "load",
    "optimize",
    "parse_space",
    "parse_walk_forward",
    "run_trial",
]
