"""Benchmarks of the event log (figures declared in bench/targets/log.toml).

- durable append: 1M events through `EventLog.append` in appends of 10k, fsync per group
  (groups of 10k events or 5 ms), and the same through `append_async` in appends of 1k;
- sealing: a 1M-event segment to zstd Parquet with page checksums (its SHA-256 and the shape
  record included);
- what tamper evidence adds: one shape record write (atomic, fsynced; once per rotation, seal,
  open and close) and the SHA-256 of a sealed 1M-event file (once per seal, and per tail
  segment at close);
- a GROUP BY over 10M synthetic events through `EventLog.sql`, and the same query by DuckDB
  on the same Parquet files read directly, in the same run.

With benchmarks disabled (the default test run) the sizes shrink so the file is a quick test.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from admf import EventLog, empty_events
from admf.log import LogOptions


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    """``n`` trade events over 64 instruments, generated with numpy."""
    rng = np.random.default_rng(seed)
    ev = empty_events(n)
    ev["ts"] = 1_700_000_000_000_000_000 + np.cumsum(rng.integers(1, 1000, n))
    ev["kind"] = 3
    ev["instrument"] = rng.integers(0, 64, n, dtype=np.uint32)
    ev["price"] = 100_000_000_000 + rng.integers(-1_000_000_000, 1_000_000_000, n)
    ev["qty"] = rng.integers(1, 100, n) * 1_000_000_000
    ev["side"] = rng.integers(1, 3, n, dtype=np.uint8)
    ev["order_id"] = np.arange(n)
    return ev


def enabled(request: pytest.FixtureRequest) -> bool:
    config = request.config
    return bool(config.getoption("benchmark_enable") or not config.getoption("benchmark_disable"))


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="admf-bench-log-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_log_durable_append(benchmark: Any, request: pytest.FixtureRequest, tmp_root: Path) -> None:
    n = 1_000_000 if enabled(request) else 50_000
    ev = synthetic(n)
    chunk = 10_000
    counter = iter(range(1_000_000))

    def setup() -> tuple[tuple[EventLog], dict[str, Any]]:
        log = EventLog.create(
            tmp_root,
            f"a{next(counter)}",
            options=LogOptions(fsync="group", group_events=10_000, group_ms=5),
        )
        return (log,), {}

    def run(log: EventLog) -> None:
        for i in range(0, n, chunk):
            log.append(ev[i : i + chunk])
        log.close()
        assert len(log) == n
        shutil.rmtree(log.path)

    benchmark.extra_info["elements"] = n
    benchmark.pedantic(run, setup=setup, rounds=5 if enabled(request) else 1)


def test_log_durable_append_async(
    benchmark: Any, request: pytest.FixtureRequest, tmp_root: Path
) -> None:
    n = 1_000_000 if enabled(request) else 50_000
    ev = synthetic(n)
    chunk = 1_000
    counter = iter(range(1_000_000))

    def setup() -> tuple[tuple[EventLog], dict[str, Any]]:
        log = EventLog.create(
            tmp_root,
            f"b{next(counter)}",
            options=LogOptions(fsync="group", group_events=10_000, group_ms=5),
        )
        return (log,), {}

    def run(log: EventLog) -> None:
        futures = [log.append_async(ev[i : i + chunk]) for i in range(0, n, chunk)]
        assert futures[-1].result().last == n
        log.close()
        shutil.rmtree(log.path)

    benchmark.extra_info["elements"] = n
    benchmark.pedantic(run, setup=setup, rounds=5 if enabled(request) else 1)


def test_log_seal(benchmark: Any, request: pytest.FixtureRequest, tmp_root: Path) -> None:
    n = 1_000_000 if enabled(request) else 50_000
    ev = synthetic(n)
    counter = iter(range(1_000_000))

    def setup() -> tuple[tuple[EventLog], dict[str, Any]]:
        log = EventLog.create(
            tmp_root,
            f"s{next(counter)}",
            options=LogOptions(fsync="never", auto_seal=False, group_events=100_000),
        )
        log.append(ev)
        return (log,), {}

    def run(log: EventLog) -> None:
        (sealed,) = log.seal()
        log.close()
        assert sealed.exists()
        shutil.rmtree(log.path)

    benchmark.extra_info["elements"] = n
    benchmark.pedantic(run, setup=setup, rounds=5 if enabled(request) else 1)


def test_log_shape_record_write(benchmark: Any, tmp_root: Path) -> None:
    """One atomic, fsynced shape record write of a log with 10 sealed files and a segment."""
    from admf.log.shape import SealedEntry, SegmentEntry, Shape

    run = tmp_root / "shape"
    run.mkdir()
    sealed = tuple(
        SealedEntry(f"events-{i:020d}-{i:020d}-00000000.parquet", i, i, 1, "ab" * 32)
        for i in range(1, 11)
    )
    shape = Shape("cd" * 32, sealed, (SegmentEntry("seg-00000000000000000011.admfseg", 11),))
    benchmark(shape.write, run)
    benchmark.extra_info["elements"] = 1
    assert Shape.read(run).sealed == sealed


def test_log_seal_hash(benchmark: Any, request: pytest.FixtureRequest, tmp_root: Path) -> None:
    """The SHA-256 that sealing adds, over the Parquet file of 1M events."""
    n = 1_000_000 if enabled(request) else 50_000
    with EventLog.create(
        tmp_root, "h", options=LogOptions(fsync="never", auto_seal=False, group_events=100_000)
    ) as log:
        log.append(synthetic(n))
        (sealed,) = log.seal()
    data = sealed.read_bytes()
    benchmark(lambda: hashlib.sha256(data).hexdigest())
    benchmark.extra_info["elements"] = n
    benchmark.extra_info["bytes"] = len(data)


QUERY = (
    "SELECT instrument, count(*) AS n, sum(qty) AS volume, avg(price) AS mean_price "
    "FROM {source} GROUP BY instrument ORDER BY instrument"
)


@pytest.fixture(scope="module")
def sealed_log(request: pytest.FixtureRequest) -> Iterator[EventLog]:
    """A log of 10M synthetic events, sealed into 10 Parquet files."""
    n = 10_000_000 if enabled(request) else 200_000
    root = Path(tempfile.mkdtemp(prefix="admf-bench-sql-"))
    log = EventLog.create(
        root, "big", options=LogOptions(fsync="never", group_events=100_000, auto_seal=False)
    )
    step = 1_000_000
    for i in range(0, n, step):
        log.append(synthetic(min(step, n - i), seed=i))
        log.seal()
    yield log
    log.close()
    shutil.rmtree(root, ignore_errors=True)


def test_log_sql_group_by(benchmark: Any, sealed_log: EventLog) -> None:
    sealed_log.sql("SELECT 1")  # the views are built once, on first use
    result = benchmark(sealed_log.sql, QUERY.format(source="events"))
    assert sum(result.column("n").to_pylist()) == len(sealed_log)
    benchmark.extra_info["elements"] = len(sealed_log)


def test_log_duckdb_direct_group_by(benchmark: Any, sealed_log: EventLog) -> None:
    con = duckdb.connect(":memory:")
    source = f"read_parquet('{sealed_log.path}/*.parquet')"
    query = QUERY.format(source=source)

    def run() -> Any:
        return con.sql(query).to_arrow_table()

    result = benchmark(run)
    assert sum(result.column("n").to_pylist()) == len(sealed_log)
    assert result.equals(sealed_log.sql(QUERY.format(source="events")))
    benchmark.extra_info["elements"] = len(sealed_log)
    con.close()
