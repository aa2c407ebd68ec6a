"""``admf optimize``: a parameter sweep or a walk-forward run over a process pool or Dask."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Final

from admf.cli._common import (
    add_read_arguments,
    add_settings_arguments,
    read_options_from,
    settings_from,
)
from admf.sweep.table import PARAM_PREFIX

if TYPE_CHECKING:
    from admf.sweep import SweepResult

NAME = "optimize"
HELP = "sweep a strategy's parameters (grid or random; walk-forward) on a pool or Dask"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strategy", required=True, help="an installed strategy's name, or module:Class"
    )
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="data files")
    parser.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="NAME=START:STOP:STEP",
        help="a parameter's values: an inclusive range or V1,V2,... (repeat per parameter)",
    )
    parser.add_argument(
        "--random", type=int, metavar="N", help="run N random points of the grid, not all"
    )
    parser.add_argument(
        "--objective", default="sharpe", help="the statistic to optimize (default sharpe)"
    )
    parser.add_argument(
        "--minimize", action="store_true", help="lower is better (default: higher is better)"
    )
    parser.add_argument(
        "--executor",
        default="local",
        metavar="local|dask-local|dask://HOST:PORT",
        help="a local process pool (default), a Dask LocalCluster, or a Dask scheduler",
    )
    parser.add_argument(
        "--workers", type=int, help="worker processes (default: from the cores and memory)"
    )
    parser.add_argument(
        "--out", metavar="SWEEP_DIR", help="the sweep directory (default: sweeps/<hash>)"
    )
    parser.add_argument(
        "--walk-forward",
        metavar="train=2y,test=6m[,step=6m]",
        help="optimize on each training window, test the best on the window after it",
    )
    parser.add_argument(
        "--time-limit", type=float, metavar="SECONDS", help="a trial running longer fails"
    )
    parser.add_argument(
        "--summaries-only", action="store_true", help="no event log per trial (large sweeps)"
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="on resume, run failed trials again"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_settings_arguments(parser)
    add_read_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from admf.sweep import SweepInterrupted, optimize

    try:
        result = optimize(
            args.strategy,
            args.data,
            args.grid,
            settings=settings_from(args),
            random=args.random,
            seed=args.seed,  # the random draws and, hashed with its parameters, each trial's
            objective=args.objective,
            direction="min" if args.minimize else "max",
            executor=args.executor,
            workers=args.workers,
            out=args.out,
            summaries_only=args.summaries_only,
            time_limit=args.time_limit,
            retry_failed=args.retry_failed,
            walk_forward=args.walk_forward,
            progress=not args.no_progress,
            read=read_options_from(args),
        )
    except SweepInterrupted as exc:
        print(
            f"admf optimize: interrupted; {exc.recorded} trials recorded in {exc.path}: "
            "run the same command to resume",
            file=sys.stderr,
        )
        return 130
    return _print(args, result)


TOP: Final[int] = 10
"""Trials the summary table shows."""
SHOWN_FAILURES: Final[int] = 20


def _print(args: argparse.Namespace, result: SweepResult) -> int:
    import pyarrow.compute as pc
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = result.table
    statuses = table["status"].to_pylist()
    counts = {s: statuses.count(s) for s in ("ok", "failed", "invalid")}
    console.print(
        f"{len(statuses)} trials: {counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['invalid']} invalid (skipped)"
    )
    for row in table.filter(pc.not_equal(table["status"], "ok")).to_pylist()[:SHOWN_FAILURES]:
        console.print(f"  {row['status']} {row['run']}: {row['reason']}", highlight=False)
    objective = args.objective
    if result.walk_forward is not None:
        view = Table(title="walk-forward: the parameters chosen per window")
        for name in ("window", "test stretch", "parameters", f"train {objective}", "test return"):
            view.add_column(name)
        for w in result.walk_forward.windows.to_pylist():
            view.add_row(
                str(w["window"]),
                f"{w['test_start']:%Y-%m-%d} to {w['test_end']:%Y-%m-%d}",
                str(w["params"]),
                _num(w["train_objective"]),
                _num(w["test_total_return"]),
            )
        console.print(view)
        equity = result.walk_forward.equity["equity"].to_pylist()
        if equity:
            console.print(f"out-of-sample total return: {_num(equity[-1] / equity[0] - 1)}")
    elif counts["ok"] and objective in table.column_names:
        ok = table.filter(pc.equal(table["status"], "ok"))
        order = "ascending" if args.minimize else "descending"
        top = ok.sort_by([(objective, order)]).slice(0, TOP).to_pylist()
        names = [n for n in table.column_names if n.startswith(PARAM_PREFIX)]
        view = Table(title=f"top {len(top)} by {objective}")
        for name in ["run", *(n.removeprefix(PARAM_PREFIX) for n in names), objective]:
            view.add_column(name)
        view.add_column("total return")
        view.add_column("trades")
        for row in top:
            view.add_row(
                row["run"],
                *(str(row[n]) for n in names),
                _num(row[objective]),
                _num(row.get("total_return")),
                _num(row.get("trades")),
            )
        console.print(view)
    console.print(f"sweep: {result.path}")
    return 1 if counts["ok"] == 0 else 0


def _num(value: object) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value:.4g}"
