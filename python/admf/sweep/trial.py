"""One trial of a sweep: one backtest of one parameter set, reduced to a compact result.

`run_trial` is the only place where a sweep runs a backtest; it runs in a worker process
(the local pool's or a Dask worker's sandbox) and returns a `TrialResult` (parameters,
statistics, output hash, status), never the run's events. Each trial's seed derives from
the sweep's seed and its parameters (`trial_seed`), and its id from its parameters and
window (`trial_id`), so a sweep gives the same trials whatever runs them, and a resumed
sweep recognises the trials it already has.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from admf.log.manifest import canonical_json

if TYPE_CHECKING:
    from admf.backtest import BacktestSettings
    from admf.data.source import ReadOptions, Source

Status = Literal["ok", "failed", "invalid"]
Role = Literal["search", "train", "test"]
"""``search``: a trial of the space; in a walk-forward, ``train``: a trial on a training
window, ``test``: the window's chosen parameters on its test stretch."""
"""``ok``: the backtest ran; ``failed``: it raised, ran out of time or its process died;
``invalid``: the strategy's config refused the parameters, so it was not run."""


@dataclasses.dataclass(frozen=True)
class TrialJob:
    """What a worker needs to run one trial."""

    trial: str
    index: int
    params: dict[str, Any]
    seed: int
    strategy: str
    data: tuple[str, ...]
    settings: BacktestSettings
    log_root: str | None
    """Where the trial's log partition ``run=<trial>`` goes; None: summaries only."""
    window: int | None = None
    role: Role = "search"
    keep_equity: bool = False
    read: ReadOptions | None = None
    """How to read the data files (``admf backtest``'s ``--tz``, ``--columns`` ...)."""


class Curve(NamedTuple):
    """A run's equity curve, small enough to send back (walk-forward test runs)."""

    ts: list[int]
    """ns, UTC"""
    equity: list[float]


@dataclasses.dataclass(frozen=True)
class TrialResult:
    """What a trial produced, small enough to send back and keep for thousands of trials."""

    trial: str
    index: int
    params: dict[str, Any]
    seed: int
    status: Status
    reason: str = ""
    output_hash: str = ""
    statistics: dict[str, float | int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    window: int | None = None
    role: Role = "search"
    equity: Curve | None = None
    """(ts in ns, equity) of the run, when the job asked for it (walk-forward test runs)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> TrialResult:
        values = dict(values)
        if values.get("equity") is not None:
            values["equity"] = Curve(*values["equity"])
        return cls(**values)


def trial_id(
    index: int, params: dict[str, Any], window: int | None = None, role: Role | None = None
) -> str:
    """``<index>-<hash of the parameters>`` (``w<window>-...`` in a walk-forward): a valid
    run id that sorts in trial order."""
    digest = hashlib.sha256(canonical_json([params, window, role]).encode()).hexdigest()[:10]
    prefix = "" if window is None else f"w{window:03d}{(role or '')[:1]}-"
    return f"{prefix}{index:05d}-{digest}"


def trial_seed(sweep_seed: int, params: dict[str, Any]) -> int:
    """The trial's seed: a hash of the sweep's seed and the parameters (63 bits), so it does
    not depend on the order in which trials run or on which worker runs them."""
    digest = hashlib.sha256(canonical_json([sweep_seed, params]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def failed(job: TrialJob, reason: str, seconds: float = 0.0) -> TrialResult:
    return TrialResult(
        job.trial,
        job.index,
        job.params,
        job.seed,
        "failed",
        reason,
        seconds=seconds,
        window=job.window,
        role=job.role,
    )


def _numbers(statistics: Any) -> dict[str, float | int]:
    """The numeric fields of a run's statistics (a dataclass of figures); integers (counts,
    nanosecond times) stay exact."""
    if statistics is None:
        return {}
    values = (
        statistics.as_dict() if hasattr(statistics, "as_dict") else dataclasses.asdict(statistics)
    )
    return {
        k: v if isinstance(v, int) else float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


@functools.lru_cache(maxsize=8)
def _read(path: str, instrument: int, read: ReadOptions | None, stamp: tuple[int, int]) -> Source:
    from admf.data.source import load_source

    return load_source(path, instrument, read)


def read_once(job: TrialJob) -> list[Source]:
    """The job's data files, read once per worker process and kept for its next trials (the
    key holds each file's size and modification time, so a file changed meanwhile is read
    again). The kernel only reads a source's events, so trials can share them."""
    sources = []
    for i, path in enumerate(job.data):
        st = os.stat(path)
        sources.append(_read(str(path), i + 1, job.read, (st.st_size, st.st_mtime_ns)))
    return sources


def run_trial(job: TrialJob) -> TrialResult:
    """Runs the trial's backtest; an exception becomes a failed result with its reason."""
    from admf.backtest import backtest

    start = time.perf_counter()
    if job.log_root is not None:
        # Not recorded as finished, so whatever is there was left by an interrupted attempt.
        shutil.rmtree(Path(job.log_root) / f"run={job.trial}", ignore_errors=True)
    settings = dataclasses.replace(job.settings, seed=job.seed)
    try:
        result = backtest(
            job.strategy,
            read_once(job),
            job.params,
            settings,
            log_dir=job.log_root,
            run_id=job.trial,
            read=job.read,
        )
    except Exception as exc:  # a trial's error is its result; the sweep goes on
        return failed(job, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    equity = None
    if job.keep_equity:
        curve = result.equity()
        equity = Curve(
            curve.column("ts").cast("int64").to_pylist(), curve.column("equity").to_pylist()
        )
    return TrialResult(
        job.trial,
        job.index,
        job.params,
        job.seed,
        "ok",
        output_hash=result.output_hash,
        statistics=_numbers(result.statistics),
        seconds=time.perf_counter() - start,
        window=job.window,
        role=job.role,
        equity=equity,
    )
