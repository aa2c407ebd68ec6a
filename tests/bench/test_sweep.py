"""Sweep figures (run by `make bench`): 2 workers against 1 on a grid of 32 SMA backtests,
the per-trial cost of each executor on a trivial trial against running it in process, and
SMA trials per minute on 1M one-minute bars.

Bars: the real BTC-PERP one-minute bars laid back to back (as `test_backtest.py`), written
once as a CSV file, since a trial is a backtest of files. ``ADMF_BENCH_SWEEP_BARS`` (default
1,000,000: a trial of about 0.7 s; each worker pays about 1 s once, for its start and
reading the data, which caps the ratio on short trials: 1.58x with 300k bars) sizes the
grid's bars, ``ADMF_BENCH_BARS`` (default 1,000,000) the big run's.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from admf import SCALE
from admf.backtest import BacktestSettings
from admf.sweep import optimize, run_trial
from admf.sweep.executors import Executor, make_executor
from admf.sweep.trial import TrialJob
from tests.integration.backtrader_feed import minute_bars

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT.parent / "shared/data/market/nautilus__ftx_btc-perp-20211231-20220201_1m.csv",
    ROOT / "tests/data/market/nautilus__ftx_btc-perp-20211231-20220201_1m_head300.csv",
]
GRID_BARS = int(os.environ.get("ADMF_BENCH_SWEEP_BARS", "1000000"))
BIG_BARS = int(os.environ.get("ADMF_BENCH_BARS", "1000000"))
SMOKE_BARS = 3_000
"""Bars when benchmarks are disabled (the normal test run checks that the benches work)."""


def _measuring(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_enable")) or not config.getoption("benchmark_disable")


GRID = ["fast=5:35:10", "slow=40:110:10"]  # 4 x 8 = 32 backtests, all valid
SMOKE_GRID = ["fast=5,15", "slow=40"]
TRIVIAL = 64


def _write_bars(n: int, path: Path) -> Path:
    """``n`` minute bars as a nautilus-ohlcv CSV (open-stamped, as the FTX file)."""
    bars = minute_bars(n, str(next(p for p in SOURCES if p.exists())))
    table = pa.table(
        {
            "timestamp": pa.array(bars["ts"] - 60_000_000_000, pa.timestamp("ns")).cast(
                pa.timestamp("us")
            ),
            "open": bars["aux"] / SCALE,
            "high": bars["order_id"] / SCALE,
            "low": bars["payload"] / SCALE,
            "close": bars["price"] / SCALE,
            "volume": bars["qty"] / SCALE,
        }
    )
    with open(path, "wb") as f:
        f.write(b"timestamp,open,high,low,close,volume\n")
        pa_csv.write_csv(table, f, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    return path


@pytest.fixture(scope="module")
def grid_bars(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    n = GRID_BARS if _measuring(pytestconfig) else SMOKE_BARS
    return _write_bars(n, tmp_path_factory.mktemp("bars") / "btc-grid.csv")


@pytest.fixture(scope="module")
def big_bars(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    n = BIG_BARS if _measuring(pytestconfig) else SMOKE_BARS
    return _write_bars(n, tmp_path_factory.mktemp("bars") / "btc-1m.csv")


def _sweep(data: Path, workers: int, out: Path, grid: list[str] = GRID) -> Any:
    # A fresh directory per round: a resumed sweep would run nothing.
    out = out / f"round-{time.monotonic_ns()}"
    result = optimize("sma-cross", [data], grid, workers=workers, out=out, summaries_only=True)
    assert result.table["status"].to_pylist() == ["ok"] * result.table.num_rows
    return result


@pytest.fixture(scope="module")
def grid(pytestconfig: pytest.Config) -> list[str]:
    return GRID if _measuring(pytestconfig) else SMOKE_GRID


def _conditions(benchmark: Any) -> None:
    """What the scaling figure depends on: the cores, the load, and whether Linux shares the
    CPU by session (autogroup: one session's workers share one session's part)."""
    benchmark.extra_info["cores"] = len(os.sched_getaffinity(0))
    benchmark.extra_info["load_before"] = os.getloadavg()[0]
    autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled")
    if autogroup.exists():
        benchmark.extra_info["sched_autogroup"] = autogroup.read_text().strip()


def test_sweep_grid_1_worker(
    benchmark: Any, grid_bars: Path, grid: list[str], tmp_path: Path
) -> None:
    benchmark.extra_info["elements"] = 32
    _conditions(benchmark)
    benchmark.pedantic(_sweep, args=(grid_bars, 1, tmp_path, grid), rounds=3, warmup_rounds=0)


def test_sweep_grid_2_workers(
    benchmark: Any, grid_bars: Path, grid: list[str], tmp_path: Path
) -> None:
    benchmark.extra_info["elements"] = 32
    _conditions(benchmark)
    benchmark.pedantic(_sweep, args=(grid_bars, 2, tmp_path, grid), rounds=3, warmup_rounds=0)


def _trivial_jobs() -> list[TrialJob]:
    data = str(ROOT / "tests/data/orcl-1995-daily-100.csv")
    template = TrialJob(
        "", 0, {}, 0, "tests.integration.strategies:NoOp", (data,), BacktestSettings(), None
    )
    return [
        dataclasses.replace(template, trial=f"{i:05d}-trivial", index=i) for i in range(TRIVIAL)
    ]


def _run_all(executor: Executor, jobs: list[TrialJob]) -> None:
    futures = {executor.submit(job): job for job in jobs}
    for future in executor.finished(futures):
        assert executor.result(futures[future], future).status == "ok"


@pytest.fixture(params=["local", "dask-local"])
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    ex = make_executor(request.param, 1, None, [])
    _run_all(ex, _trivial_jobs()[:4])  # the sandbox is started and has imported the engine
    try:
        yield ex
    finally:
        ex.close()


def test_trivial_trial_in_process(benchmark: Any) -> None:
    jobs = _trivial_jobs()
    for job in jobs[:4]:
        run_trial(job)
    benchmark.extra_info["elements"] = len(jobs)
    benchmark.pedantic(lambda: [run_trial(j) for j in jobs], rounds=5, warmup_rounds=0)


def test_trivial_trial_executor(benchmark: Any, executor: Executor) -> None:
    """One worker: the time per trial minus the in-process time is the executor's cost."""
    jobs = _trivial_jobs()
    benchmark.extra_info["elements"] = len(jobs)
    benchmark.extra_info["executor"] = executor.name
    benchmark.pedantic(_run_all, args=(executor, jobs), rounds=5, warmup_rounds=0)
    if benchmark.stats is not None:  # None when benchmarks are disabled
        in_process = []
        for _ in range(3):
            start = time.perf_counter()
            for job in jobs:
                run_trial(job)
            in_process.append((time.perf_counter() - start) / len(jobs))
        per_trial = benchmark.stats.stats.median / len(jobs)
        benchmark.extra_info["in_process_ms"] = 1e3 * float(np.median(in_process))
        benchmark.extra_info["overhead_ms"] = 1e3 * (per_trial - float(np.median(in_process)))


def test_sweep_sma_1m_bars(benchmark: Any, big_bars: Path, tmp_path: Path) -> None:
    grid = ["fast=10,20", "slow=30,60"]
    benchmark.extra_info["elements"] = 4
    benchmark.extra_info["bars"] = BIG_BARS
    result = benchmark.pedantic(
        _sweep, args=(big_bars, 2, tmp_path, grid), rounds=1, warmup_rounds=0
    )
    per_trial = np.median(result.table["seconds"].to_numpy())
    benchmark.extra_info["trial_seconds_median"] = float(per_trial)
    if benchmark.stats is not None:  # None when benchmarks are disabled
        benchmark.extra_info["trials_per_minute"] = 4 * 60 / benchmark.stats.stats.median
