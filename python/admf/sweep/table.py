"""The result table of a sweep: one row per trial, in trial order, as Arrow and Parquet.

Columns: ``run`` (the trial's id, also its log partition ``run=<id>`` and the ``run`` column
of the log views, so ``JOIN sweep USING (run)`` works), ``window`` and ``role`` in a
walk-forward, ``param_<name>`` per parameter, ``status`` (ok, failed, invalid), ``reason``,
``seed``, ``output_hash``, every statistic of the run (``sharpe``, ``total_return`` ...) and
``seconds``. Every column but ``seconds`` is the same whatever executor and worker count ran
the sweep.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from admf.sweep.journal import write_atomic
from admf.sweep.trial import TrialResult

TABLE_NAME: Final[str] = "sweep.parquet"
RUNS_DIR: Final[str] = "runs"
PARAM_PREFIX: Final[str] = "param_"


def build_table(
    results: Iterable[TrialResult], params: list[str], walk_forward: bool = False
) -> pa.Table:
    """The table of ``results``, with a column per name of ``params`` (in that order); rows
    in trial order (a walk-forward: per window, its training trials, then its test run)."""
    rows = sorted(results, key=lambda r: (r.window or 0, r.role == "test", r.index))
    statistics: list[str] = []
    for r in rows:
        statistics += [s for s in r.statistics if s not in statistics]
    columns: dict[str, pa.Array] = {"run": pa.array([r.trial for r in rows], pa.string())}
    if walk_forward:
        columns["window"] = pa.array([r.window for r in rows], pa.int32())
        columns["role"] = pa.array([r.role for r in rows], pa.string())
    for p in params:
        columns[PARAM_PREFIX + p] = pa.array([r.params.get(p) for r in rows])
    columns["status"] = pa.array([r.status for r in rows], pa.string())
    columns["reason"] = pa.array([r.reason for r in rows], pa.string())
    columns["seed"] = pa.array([r.seed for r in rows], pa.int64())
    columns["output_hash"] = pa.array([r.output_hash or None for r in rows], pa.string())
    for s in statistics:
        values = [r.statistics.get(s) for r in rows]
        exact = all(isinstance(v, int) for v in values if v is not None)
        columns[s] = pa.array(values, pa.int64() if exact else pa.float64())
    columns["seconds"] = pa.array([r.seconds for r in rows], pa.float64())
    return pa.table(columns)


def write_table(table: pa.Table, root: Path) -> Path:
    path = root / TABLE_NAME
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_atomic(path, sink.getvalue().to_pybytes())
    return path


def read_table(root: str | Path) -> pa.Table:
    return pq.read_table(Path(root) / TABLE_NAME)


def params_of(table: pa.Table) -> list[str]:
    """The parameter names of a result table."""
    return [n.removeprefix(PARAM_PREFIX) for n in table.column_names if n.startswith(PARAM_PREFIX)]
