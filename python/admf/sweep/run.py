"""The sweep driver: builds the trials of a space, runs those not yet recorded on an
executor, records each as it finishes, and writes the result table.

See the package docstring for the directory layout; `optimize` is the Python API.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from admf.backtest import BacktestSettings, StrategySpec, resolve_strategy
from admf.data.source import ReadOptions
from admf.errors import AdmfError
from admf.log.manifest import canonical_json
from admf.metrics import Summary
from admf.sweep import journal as journal_mod
from admf.sweep.executors import Executor, check_executor, make_executor
from admf.sweep.progress import SweepProgress
from admf.sweep.space import Dimension, Params, grid, parse_space, random_draws
from admf.sweep.table import RUNS_DIR, build_table, write_table
from admf.sweep.trial import TrialJob, TrialResult, trial_id, trial_seed
from admf.sweep.walkforward import (
    MarketFile,
    WalkForwardSpec,
    Window,
    cut,
    parse_walk_forward,
    read_files,
    span,
    stitch,
    windows,
)

Direction = Literal["max", "min"]
OBJECTIVES: Final[tuple[str, ...]] = tuple(
    f.name for f in dataclasses.fields(Summary) if f.type in ("float", float)
)
"""The statistics a sweep can optimize (the float figures of ``admf.metrics.Summary``)."""
WINDOWS_NAME: Final[str] = "windows.parquet"
OOS_NAME: Final[str] = "oos_equity.parquet"


@dataclasses.dataclass(frozen=True)
class Objective:
    name: str = "sharpe"
    direction: Direction = "max"

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise AdmfError(
                f"unknown objective {self.name!r}; expected one of: {', '.join(OBJECTIVES)}"
            )
        if self.direction not in ("max", "min"):
            raise AdmfError(f"direction must be max or min, got {self.direction!r}")

    def value(self, result: TrialResult) -> float | None:
        """The trial's objective, None when it has none (failed, or NaN: no trades)."""
        v = result.statistics.get(self.name) if result.status == "ok" else None
        return None if v is None or math.isnan(v) else v

    def best(self, results: Sequence[TrialResult]) -> TrialResult | None:
        """The best trial (the first in trial order among equals)."""
        scored = [(v, r) for r in results if (v := self.value(r)) is not None]
        if not scored:
            return None
        sign = 1.0 if self.direction == "max" else -1.0
        return max(sorted(scored, key=lambda s: s[1].index), key=lambda s: sign * s[0])[1]


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was interrupted (SIGINT); what finished is recorded at ``path``."""

    def __init__(self, path: Path, recorded: int) -> None:
        super().__init__(f"{recorded} trials recorded in {path}")
        self.path = path
        self.recorded = recorded


@dataclasses.dataclass(frozen=True)
class WalkForwardResult:
    windows: pa.Table
    """Per window: its dates, the chosen parameters, their training objective, the test
    run and its statistics."""
    equity: pa.Table
    """The stitched out-of-sample equity curve: ts, equity, window."""


@dataclasses.dataclass(frozen=True)
class SweepResult:
    path: Path
    table: pa.Table
    """One row per trial (see ``admf.sweep.table``)."""
    best: TrialResult | None
    walk_forward: WalkForwardResult | None = None

    @property
    def invalid(self) -> pa.Table:
        return self.table.filter(pc.equal(self.table["status"], "invalid"))


def _spec_name(strategy: StrategySpec) -> str:
    if isinstance(strategy, str):
        return strategy
    return f"{strategy.__module__}:{strategy.__qualname__}"


def default_out(spec: Mapping[str, Any]) -> Path:
    """``sweeps/<hash of the sweep's definition>``: the same command finds the same directory
    (and resumes there)."""
    return Path("sweeps") / hashlib.sha256(canonical_json(spec).encode()).hexdigest()[:12]


class _Run:
    """One sweep in progress: its directory, record, executor and progress bar."""

    def __init__(
        self,
        root: Path,
        executor: Executor,
        objective: Objective,
        bar: SweepProgress,
        retry_failed: bool,
    ) -> None:
        self.root = root
        self.executor = executor
        self.objective = objective
        self.bar = bar
        self.recorded = journal_mod.read_journal(root)
        if retry_failed:
            self.recorded = {k: r for k, r in self.recorded.items() if r.status == "ok"}
        self.journal = journal_mod.Journal(root)

    def run(self, description: str, jobs: list[TrialJob]) -> list[TrialResult]:
        """Runs the jobs not recorded yet; returns every job's result, in job order."""
        before = [self.recorded[j.trial] for j in jobs if j.trial in self.recorded]
        todo = [j for j in jobs if j.trial not in self.recorded]
        best = self.objective.best(before)
        self.bar.phase(description, len(jobs), len(before))
        self.bar.update(0, failed=sum(r.status != "ok" for r in before), best=self._text(best))
        futures = {self.executor.submit(job): job for job in todo}
        for done, future in enumerate(self.executor.finished(futures), 1):
            job = futures[future]
            result = self.executor.result(job, future)
            self.journal.append(result)
            self.recorded[job.trial] = result
            best = self.objective.best([r for r in (best, result) if r is not None])
            running = min(self.executor.workers, len(todo) - done)
            self.bar.update(running, 1, int(result.status != "ok"), self._text(best))
        return [self.recorded[j.trial] for j in jobs]

    def _text(self, best: TrialResult | None) -> str:
        if best is None:
            return ""
        params = " ".join(f"{k}={v}" for k, v in best.params.items())
        return f"best {self.objective.name} {best.statistics[self.objective.name]:.4g} ({params})"

    def close(self) -> None:
        self.journal.close()
        self.executor.close()
        self.bar.close()


def _space(space: Sequence[str] | Mapping[str, Sequence[Any]]) -> list[Dimension]:
    if isinstance(space, Mapping):
        return parse_space([f"{k}={','.join(str(v) for v in vs)}" for k, vs in space.items()])
    return parse_space(list(space))


def optimize(
    strategy: StrategySpec,
    data: Sequence[str | os.PathLike[str]],
    space: Sequence[str] | Mapping[str, Sequence[Any]],
    *,
    settings: BacktestSettings | None = None,
    random: int | None = None,
    seed: int = 0,
    objective: str = "sharpe",
    direction: Direction = "max",
    executor: str = "local",
    workers: int | None = None,
    out: str | os.PathLike[str] | None = None,
    summaries_only: bool = False,
    time_limit: float | None = None,
    retry_failed: bool = False,
    walk_forward: str | None = None,
    progress: bool = False,
    read: ReadOptions | None = None,
) -> SweepResult:
    """Runs a parameter sweep (or a walk-forward with ``walk_forward``) and returns its result
    table as Arrow. ``space``: ``--grid`` strings (``"fast=5:20:5"``) or ``{name: values}``.
    Run again with the same arguments, it resumes: recorded trials are not run again
    (failed ones neither, unless ``retry_failed``). ``read`` says how to read the data files,
    as for ``backtest``."""
    settings = settings or BacktestSettings()
    goal = Objective(objective, direction)
    dims = _space(space)
    if not dims:
        raise AdmfError("a sweep needs at least one --grid parameter")
    if not data:
        raise AdmfError("a sweep needs at least one data file")
    check_executor(executor, workers)
    if time_limit is not None and time_limit <= 0:
        raise AdmfError(f"--time-limit must be positive, got {time_limit}")
    wf = parse_walk_forward(walk_forward) if walk_forward else None
    combos = grid(dims) if random is None else random_draws(dims, random, seed)
    strategy_cls = resolve_strategy(strategy)
    paths = [str(Path(p).resolve()) for p in data]
    for p in paths:
        if not Path(p).is_file():
            raise AdmfError(f"no data file at {p}")
    spec = {
        "strategy": _spec_name(strategy),
        "data": paths,
        "grid": {d.name: list(d.values) for d in dims},
        "random": random,
        "seed": seed,
        "objective": goal.name,
        "direction": goal.direction,
        "settings": settings.to_dict(),
        "summaries_only": summaries_only,
        "walk_forward": str(wf) if wf else None,
        "read": read.to_dict() if read else None,
    }
    invalid: dict[int, str] = {}
    for i, params in enumerate(combos):
        try:
            strategy_cls.make_config(params)
        except AdmfError as exc:
            invalid[i] = str(exc)
    if len(invalid) == len(combos):  # a misspelt parameter, most likely: nothing would run
        raise AdmfError(f"no point of the space is valid: {invalid[0]}")
    root = Path(out) if out is not None else default_out(spec)
    journal_mod.check_or_write_spec(root, spec)
    template = TrialJob(
        trial="",
        index=0,
        params={},
        seed=0,
        strategy=_spec_name(strategy),
        data=tuple(paths),
        settings=settings,
        log_root=None if summaries_only else str(root / RUNS_DIR),
        read=read,
    )
    ex = make_executor(executor, workers, time_limit, paths)
    try:
        run = _Run(root, ex, goal, SweepProgress(progress), retry_failed)
    except BaseException:
        ex.close()
        raise
    try:
        if wf is None:
            jobs = [
                dataclasses.replace(
                    template,
                    trial=trial_id(i, p),
                    index=i,
                    params=p,
                    seed=trial_seed(seed, p),
                )
                for i, p in enumerate(combos)
                if i not in invalid
            ]
            results = run.run("trials", jobs)
            results += [_invalid(template, i, combos[i], seed, invalid[i]) for i in sorted(invalid)]
            table = build_table(results, [d.name for d in dims])
            write_table(table, root)
            return SweepResult(root, table, goal.best(results))
        return _walk_forward(run, template, wf, dims, combos, invalid, seed, settings)
    except KeyboardInterrupt:
        raise SweepInterrupted(root, len(run.recorded)) from None
    finally:
        run.close()


def _invalid(template: TrialJob, index: int, params: Params, seed: int, reason: str) -> TrialResult:
    return TrialResult(
        trial_id(
            index, params, template.window, template.role if template.window is not None else None
        ),
        index,
        params,
        trial_seed(seed, params),
        "invalid",
        reason,
        window=template.window,
        role=template.role,
    )


def _walk_forward(
    run: _Run,
    template: TrialJob,
    spec: WalkForwardSpec,
    dims: list[Dimension],
    combos: list[Params],
    invalid: dict[int, str],
    seed: int,
    settings: BacktestSettings,
) -> SweepResult:
    files: list[MarketFile] = read_files(list(template.data), template.read)
    first, last = span(files)
    wins: list[Window] = windows(first, last, spec)
    data_root = run.root / "data"

    def window_data(w: Window, role: str) -> tuple[str, ...]:
        start, end = (w.train_start, w.train_end) if role == "train" else (w.train_end, w.test_end)
        dest = data_root / f"w{w.index:03d}-{role}"
        return tuple(cut(f, start, end, dest, template.read) for f in files)

    train_jobs: list[TrialJob] = []
    results: list[TrialResult] = []
    for w in wins:
        base = dataclasses.replace(
            template, data=window_data(w, "train"), window=w.index, role="train"
        )
        for i, p in enumerate(combos):
            if i in invalid:
                results.append(_invalid(base, i, p, seed, invalid[i]))
                continue
            train_jobs.append(
                dataclasses.replace(
                    base,
                    trial=trial_id(i, p, w.index, "train"),
                    index=i,
                    params=p,
                    seed=trial_seed(seed, p),
                )
            )
    trained = run.run("training", train_jobs)
    results += trained
    chosen: dict[int, TrialResult] = {}
    for w in wins:
        best = run.objective.best([r for r in trained if r.window == w.index])
        if best is not None:
            chosen[w.index] = best
    test_jobs = [
        dataclasses.replace(
            template,
            trial=trial_id(chosen[w.index].index, chosen[w.index].params, w.index, "test"),
            index=chosen[w.index].index,
            params=chosen[w.index].params,
            seed=chosen[w.index].seed,
            data=window_data(w, "test"),
            window=w.index,
            role="test",
            keep_equity=True,
        )
        for w in wins
        if w.index in chosen
    ]
    tested = run.run("testing", test_jobs)
    results += [dataclasses.replace(r, equity=None) for r in tested]
    table = build_table(results, [d.name for d in dims], walk_forward=True)
    write_table(table, run.root)
    by_window = {r.window: r for r in tested}
    rows = []
    for w in wins:
        pick = chosen.get(w.index)
        test = by_window.get(w.index)
        rows.append(
            {
                "window": w.index,
                "train_start": w.train_start,
                "train_end": w.train_end,
                "test_start": w.train_end,
                "test_end": w.test_end,
                "params": " ".join(f"{k}={v}" for k, v in pick.params.items()) if pick else None,
                "train_objective": run.objective.value(pick) if pick else None,
                "test_run": test.trial if test else None,
                "test_status": test.status if test else "no valid training trial",
                "test_objective": run.objective.value(test) if test else None,
                "test_total_return": test.statistics.get("total_return") if test else None,
            }
        )
    ts = pa.timestamp("ns", tz="UTC")
    win_table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("window", pa.int32()),
                ("train_start", ts),
                ("train_end", ts),
                ("test_start", ts),
                ("test_end", ts),
                ("params", pa.string()),
                ("train_objective", pa.float64()),
                ("test_run", pa.string()),
                ("test_status", pa.string()),
                ("test_objective", pa.float64()),
                ("test_total_return", pa.float64()),
            ]
        ),
    )
    curves = [
        (r.window or 0, r.equity[0], r.equity[1])
        for r in sorted(tested, key=lambda r: r.window or 0)
        if r.status == "ok" and r.equity is not None
    ]
    equity = stitch(curves, settings.initial_cash)
    pq.write_table(win_table, run.root / WINDOWS_NAME)
    pq.write_table(equity, run.root / OOS_NAME)
    return SweepResult(
        run.root,
        table,
        run.objective.best([r for r in tested if r.status == "ok"]),
        WalkForwardResult(win_table, equity),
    )


def load(path: str | os.PathLike[str]) -> SweepResult:
    """A finished sweep from its directory."""
    import json

    from admf.sweep.table import TABLE_NAME, read_table

    root = Path(path)
    if not (root / TABLE_NAME).is_file():
        raise AdmfError(f"no sweep at {root}: {TABLE_NAME} not found")
    spec = json.loads((root / journal_mod.SPEC_NAME).read_text())
    goal = Objective(spec["objective"], spec["direction"])
    recorded = list(journal_mod.read_journal(root).values())
    if not (root / WINDOWS_NAME).is_file():
        return SweepResult(root, read_table(root), goal.best(recorded))
    wf = WalkForwardResult(pq.read_table(root / WINDOWS_NAME), pq.read_table(root / OOS_NAME))
    tested = [r for r in recorded if r.role == "test"]
    return SweepResult(root, read_table(root), goal.best(tested), wf)
