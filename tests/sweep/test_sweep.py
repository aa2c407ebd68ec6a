"""Sweeps on the local pool and on Dask: the same result table, trials that fail, hang or
die without stopping the sweep, resume after a kill, SQL over the trials' logs, the page."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from admf.backtest import BacktestSettings, backtest
from admf.cli import main
from admf.errors import AdmfError
from admf.sweep import optimize
from admf.sweep.trial import trial_seed
from tests.sweep.conftest import FAULTY, ORCL_300, ROOT

GRID = ["fast=5,10,25", "slow=10:30:10"]  # 9 points, 3 of them invalid (fast >= slow)


def _deterministic(table: pa.Table) -> list[dict[str, object]]:
    """The rows of a result table but the timing; NaN as text (NaN != NaN)."""
    return [
        {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in table.drop(["seconds"]).to_pylist()
    ]


def test_local_pool_and_dask_give_the_same_table(tmp_path: Path) -> None:
    one = optimize("sma-cross", [ORCL_300], GRID, executor="local", workers=1, out=tmp_path / "a")
    two = optimize("sma-cross", [ORCL_300], GRID, executor="local", workers=2, out=tmp_path / "b")
    dask = optimize(
        "sma-cross", [ORCL_300], GRID, executor="dask-local", workers=2, out=tmp_path / "c"
    )
    assert one.table.num_rows == 9
    assert one.table["status"].to_pylist().count("invalid") == 3
    assert one.table["status"].to_pylist().count("ok") == 6
    assert one.table.schema == two.table.schema == dask.table.schema
    assert _deterministic(one.table) == _deterministic(two.table)
    assert _deterministic(one.table) == _deterministic(dask.table)
    assert pq.read_table(tmp_path / "c/sweep.parquet").equals(dask.table)
    # A trial is the backtest it says: same output hash when run by hand with its seed.
    best = one.best
    assert best is not None
    assert best.statistics["sharpe"] == max(
        v for v in one.table["sharpe"].to_pylist() if v is not None
    )
    direct = backtest(
        "sma-cross", [ORCL_300], best.params, BacktestSettings(seed=trial_seed(0, best.params))
    )
    assert direct.output_hash == best.output_hash
    assert direct.statistics is not None
    assert direct.statistics.sharpe == best.statistics["sharpe"]


def test_invalid_points_are_reported_not_run(tmp_path: Path) -> None:
    result = optimize("sma-cross", [ORCL_300], GRID, workers=2, out=tmp_path)
    invalid = result.invalid.to_pylist()
    assert {(r["param_fast"], r["param_slow"]) for r in invalid} == {(10, 10), (25, 10), (25, 20)}
    assert all("need 0 < fast < slow" in r["reason"] for r in invalid)
    ran = sorted(f"run={r['run']}" for r in result.table.to_pylist() if r["status"] == "ok")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ran


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_failing_hanging_and_killed_trials(
    tmp_path: Path, executor: str, dask_address: str
) -> None:
    result = optimize(
        FAULTY,
        [ORCL_300],
        ["mode=ok,raise,hang,kill", "every=3"],
        executor="local" if executor == "local" else dask_address,
        workers=2,
        time_limit=1.5,
        out=tmp_path,
    )
    rows = {(r["param_mode"], r["param_every"]): r for r in result.table.to_pylist()}
    for every in (3,):
        assert rows["ok", every]["status"] == "ok"
        assert rows["ok", every]["output_hash"]
        assert rows["raise", every]["status"] == "failed"
        assert "RuntimeError: boom" in rows["raise", every]["reason"]
        assert rows["hang", every]["status"] == "failed"
        assert rows["hang", every]["reason"].startswith("timeout")
        assert rows["kill", every]["status"] == "failed"
        assert rows["kill", every]["reason"].startswith("killed")
        assert str(-signal.SIGKILL) in rows["kill", every]["reason"]
    # The logs the killed trials left half written do not stop SQL over the sweep.
    from admf.log.sql import query

    counts = query(tmp_path, "SELECT run, count(*) AS n FROM events GROUP BY run").to_pylist()
    assert {r["run"]: r["n"] for r in counts}.get(rows["ok", 3]["run"], 0) > 0


def _recorded(root: Path) -> set[str]:
    path = root / "trials.jsonl"
    if not path.exists():
        return set()
    lines = path.read_bytes().splitlines(keepends=True)
    return {json.loads(line)["params"]["every"] for line in lines if line.endswith(b"\n")}


def _interrupt(args: list[str], out: Path, recorded: int, sig: signal.Signals) -> int:
    """Starts ``admf ARGS`` and sends ``sig`` to its process group (Ctrl-C in a terminal; a
    SIGKILL of everything, as a crash of the session would) once ``recorded`` trials are
    recorded."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "admf", *args],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(_recorded(out)) < recorded and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    if sig == signal.SIGINT:
        assert b"interrupted" in err
        assert b"run the same command to resume" in err
    return proc.returncode


def test_resume_after_sigint_and_kill_9_skips_finished_trials(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "sweep"
    args = [
        "optimize",
        "--strategy", FAULTY,
        "--data", str(ORCL_300),
        "--grid", "mode=slow",
        "--grid", "every=1:8:1",
        "--grid", "sleep=0.25",
        "--grid", f"marks={marks}",
        "--workers", "1",
        "--out", str(out),
        "--no-progress",
    ]  # fmt: skip

    def runs_of(every: int) -> int:
        return len(list(marks.glob(f"slow-{every}-*")))

    assert _interrupt(args, out, 2, signal.SIGINT) == 130
    first = _recorded(out)
    assert 2 <= len(first) < 8
    assert _interrupt(args, out, len(first) + 2, signal.SIGKILL) == -signal.SIGKILL
    second = _recorded(out)
    assert first < second
    assert len(second) < 8
    assert all(runs_of(every) == 1 for every in first)  # not run again after SIGINT
    counts = {every: runs_of(every) for every in second}
    assert main(args) == 0
    table = pq.read_table(out / "sweep.parquet")
    assert table["status"].to_pylist() == ["ok"] * 8
    assert {every: runs_of(every) for every in second} == counts  # nor after kill -9
    assert all(runs_of(every) >= 1 for every in range(1, 9))
    before = len(list(marks.iterdir()))
    assert main(args) == 0  # a finished sweep runs nothing
    assert len(list(marks.iterdir())) == before
    assert _deterministic(pq.read_table(out / "sweep.parquet")) == _deterministic(table)


def test_resume_reruns_failed_trials_only_when_asked(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    space = ["mode=ok,raise", f"marks={marks}"]

    def sweep(retry: bool) -> list[str]:
        result = optimize(
            FAULTY, [ORCL_300], space, workers=1, out=tmp_path / "s", retry_failed=retry
        )
        return result.table["status"].to_pylist()

    assert sweep(retry=False) == ["ok", "failed"]
    assert sweep(retry=False) == ["ok", "failed"]
    assert sorted(p.name.split("-")[0] for p in marks.iterdir()) == ["ok", "raise"]
    assert sweep(retry=True) == ["ok", "failed"]
    assert sorted(p.name.split("-")[0] for p in marks.iterdir()) == ["ok", "raise", "raise"]


def test_query_compares_trials_in_sql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = optimize("sma-cross", [ORCL_300], GRID, workers=2, out=tmp_path)
    code = main(
        [
            "query",
            str(tmp_path),
            "SELECT s.run, count(*) AS n FROM fills f JOIN sweep s USING (run) "
            "GROUP BY s.run ORDER BY s.run",
            "--format",
            "json",
        ]
    )
    assert code == 0
    counts = {row["run"]: row["n"] for row in map(json.loads, capsys.readouterr().out.splitlines())}
    ok = [r for r in result.table.to_pylist() if r["status"] == "ok"]
    assert sorted(counts) == sorted(r["run"] for r in ok)
    for r in ok:
        run = backtest("sma-cross", [ORCL_300], {"fast": r["param_fast"], "slow": r["param_slow"]})
        assert counts[r["run"]] == run.fills().num_rows
    # The page: its best trial's tear sheet is rebuilt from that trial's log.
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "page.html")]) == 0
    page = (tmp_path / "page.html").read_text()
    assert "sharpe over fast and slow" in page
    assert f"Tear sheet of the best trial: {result.best.trial}" in page  # type: ignore[union-attr]
    assert 'src="best-trial.html"' in page
    assert (tmp_path / "best-trial.html").stat().st_size > 0


def test_summaries_only_keeps_the_table_and_no_logs(tmp_path: Path) -> None:
    result = optimize("sma-cross", [ORCL_300], GRID, workers=2, out=tmp_path, summaries_only=True)
    assert not (tmp_path / "runs").exists()
    from admf.log.sql import query

    table = query(tmp_path, "SELECT count(*) AS n FROM sweep WHERE status = 'ok'")
    assert table["n"].to_pylist() == [6]
    assert result.best is not None
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "sharpe over fast and slow" in page
    assert (tmp_path / "best-trial.html").is_file()


def test_random_search_draws_distinct_points_of_the_grid(tmp_path: Path) -> None:
    result = optimize("sma-cross", [ORCL_300], GRID, random=4, seed=7, workers=2, out=tmp_path)
    points = [(r["param_fast"], r["param_slow"]) for r in result.table.to_pylist()]
    assert len(set(points)) == 4
    assert all(f in (5, 10, 25) and s in (10, 20, 30) for f, s in points)
    assert result.table["seed"].to_pylist() == [
        trial_seed(7, {"fast": f, "slow": s}) for f, s in points
    ]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["optimize", "--strategy", "sma-cross", "--data", str(ORCL_300), "--no-progress"]
    cases = {
        "--grid fast=5:2:1": "STOP is below START",
        "--grid fast=5:10:0": "step must be positive",
        "--grid fast=5 --objective sharp": "unknown objective 'sharp'",
        "--grid fast=5 --executor ray": "unknown executor 'ray'",
        "--grid fast=5 --walk-forward train=2x,test=1y": "--walk-forward train='2x'",
        "--grid fast=5 --workers 0": "--workers must be at least 1",
        "--grid fats=5": "no point of the space is valid: SmaCross has no parameter fats",
        "--grid fast=5 --grid slow=5": "no point of the space is valid",
        "--grid fast=5 --random 0": "--random takes a positive number",
        "--grid fast=5 --time-limit 0": "--time-limit must be positive",
    }
    for extra, message in cases.items():
        assert main([*base, *extra.split(), "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert message in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()  # refused before anything was written
    out = tmp_path / "s"
    assert main([*base, "--grid", "fast=5", "--grid", "slow=20", "--out", str(out)]) == 0
    before = (out / "sweep.parquet").read_bytes()
    assert main([*base, "--grid", "fast=6", "--grid", "slow=20", "--out", str(out)]) == 2
    assert "holds another sweep (it differs in: grid)" in capsys.readouterr().err
    assert (out / "sweep.parquet").read_bytes() == before


def test_daemonic_dask_workers_are_refused(tmp_path: Path) -> None:
    """Workers started the default way cannot start sandbox processes: said before a trial
    runs, with the setting that fixes it."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        with pytest.raises(AdmfError, match="DASK_DISTRIBUTED__WORKER__DAEMON=False"):
            optimize("sma-cross", [ORCL_300], GRID, executor=address, out=tmp_path)
    assert json.loads((tmp_path / "sweep.json").read_text())["strategy"] == "sma-cross"
    assert not (tmp_path / "trials.jsonl").exists()
