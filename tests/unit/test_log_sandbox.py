"""Queries over a log only read that log: every way a tester found to write, attach, load,
change settings or read the machine is refused with one line (exit 2 at the CLI), and the log
directory is byte-identical before and after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from admf import EventLog, Kind, empty_events
from admf.cli import main
from admf.log import QueryError, QueryRefusedError


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (names and bytes); directories as empty entries."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    ev = empty_events(50)
    ev["ts"] = np.arange(50) + 1_000
    ev["kind"] = Kind.TRADE
    ev["price"] = np.arange(50) * 1_000_000_000
    ev["qty"] = 1_000_000_000
    log = EventLog.create(tmp_path / "logs", "sandbox", config={"x": 1}, seed=3)
    log.append(ev[:30])
    log.seal()
    log.append(ev[30:])
    log.close()
    return log.path


def attacks(run: Path) -> list[str]:
    (sealed,) = sorted(run.glob("events-*.parquet"))
    outside = run.parent.parent
    return [
        f"COPY (SELECT * FROM events LIMIT 1) TO '{sealed}' (FORMAT parquet)",
        f"COPY (SELECT 1) TO '{run / 'manifest.json'}'",
        f"COPY (SELECT * FROM events) TO '{run / 'tail' / 'seg-x.parquet'}' (FORMAT parquet)",
        f"COPY (SELECT 1) TO '{outside / 'elsewhere.csv'}'",
        f"EXPORT DATABASE '{run / 'export'}'",
        f"ATTACH '{run / 'x.duckdb'}' AS x",
        "ATTACH ':memory:' AS m",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/shadow')",
        "SELECT * FROM glob('/home/*')",
        f"SELECT * FROM read_parquet('{outside}/*.parquet')",
        "DROP VIEW events",
        "CREATE TABLE t AS SELECT 1",
        "CREATE OR REPLACE TEMP VIEW events AS SELECT 1",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET threads = 1",
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "PRAGMA enable_profiling",
        "CALL pragma_version()",
        f"SELECT 1; COPY (SELECT 1) TO '{run / 'y.csv'}'",
        "EXPLAIN ANALYZE SELECT 1",
    ]


def test_every_attack_is_refused_by_admf_query_in_one_line_and_changes_nothing(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = run_dir.parent
    before = snapshot(root)
    for sql in attacks(run_dir):
        code = main(["query", str(run_dir), sql])
        err = capsys.readouterr().err
        assert code == 2, sql
        assert err.startswith("admf query: error: "), (sql, err)
        assert err.count("\n") == 1, (sql, err)  # one line, no traceback
        assert "Traceback" not in err
        assert snapshot(root) == before, sql
    # and the same log still answers a read
    assert main(["query", str(run_dir), "SELECT count(*) AS n FROM events", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ['"n"', "50"]
    assert snapshot(root) == before


def test_event_log_sql_is_sandboxed_the_same_way(run_dir: Path) -> None:
    root = run_dir.parent
    before = snapshot(root)
    with EventLog.open(run_dir, read_only=True) as log:
        for sql in attacks(run_dir):
            with pytest.raises(QueryError):
                log.sql(sql)
        assert log.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 50}]
    assert snapshot(root) == before


def test_writes_are_refused_before_anything_runs(run_dir: Path) -> None:
    with EventLog.open(run_dir, read_only=True) as log:
        # the first statement would run fine; the second is refused, so neither runs
        with pytest.raises(QueryRefusedError, match="refused a COPY statement"):
            log.sql(f"SELECT 1; COPY (SELECT 1) TO '{run_dir / 'z.csv'}'")
        with pytest.raises(QueryRefusedError, match="only SELECT"):
            log.sql("DROP VIEW events")
        # the views are intact, reading the log's own files is allowed
        assert log.sql("SELECT count(*) AS n FROM trades").to_pylist() == [{"n": 50}]
        (sealed,) = log.sealed_files
        rows = log.sql(f"SELECT count(*) AS n FROM read_parquet('{sealed}')").to_pylist()
        assert rows == [{"n": 30}]
    assert not (run_dir / "z.csv").exists()


def test_a_writer_can_query_its_own_log_too(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "w") as log:
        log.append(empty_events(5))
        assert log.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 5}]
        with pytest.raises(QueryRefusedError):
            log.sql(f"COPY (SELECT 1) TO '{log.path / 'q.csv'}'")
        log.append(empty_events(2))
        assert log.sql("SELECT max(seq) AS m FROM events").to_pylist() == [{"m": 7}]
