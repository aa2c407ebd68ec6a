"""Walk-forward on the bundled ORCL daily bars, checked against running the same backtests
one by one on windows cut here by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from admf.backtest import BacktestSettings, backtest
from admf.cli import main
from admf.data.bars import read_bars
from admf.sweep import optimize, parse_walk_forward
from admf.sweep.trial import trial_seed
from admf.sweep.walkforward import WalkForwardError
from tests.sweep.conftest import ORCL_2005

COMBOS = [{"fast": f, "slow": s} for f in (5, 10) for s in (20, 40)]


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def _plus_years(ns: int, years: int) -> int:
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return _ns(when.replace(year=when.year + years))


def _cut(lines: list[str], ts: np.ndarray, start: int, end: int, path: Path) -> Path:
    keep = [line for line, t in zip(lines[1:], ts, strict=True) if start <= t < end]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(lines[0] + "".join(keep))
    return path


def _run(data: Path, params: dict[str, int]) -> object:
    return backtest("sma-cross", [data], params, BacktestSettings(seed=trial_seed(0, params)))


def test_walk_forward_matches_the_backtests_run_one_by_one(tmp_path: Path) -> None:
    result = optimize(
        "sma-cross",
        [ORCL_2005],
        {"fast": [5, 10], "slow": [20, 40]},
        walk_forward="train=2y,test=1y",
        workers=2,
        out=tmp_path / "sweep",
        summaries_only=True,
    )
    assert result.walk_forward is not None
    windows = result.walk_forward.windows.to_pylist()
    curve = result.walk_forward.equity

    lines = ORCL_2005.read_text().splitlines(keepends=True)
    ts = read_bars(ORCL_2005)["ts"]
    first, last = int(ts[0]), int(ts[-1])
    expected_curve: list[float] = []
    level = 100_000.0
    k = 0
    while _plus_years(first, k + 2) <= last:
        start, train_end = _plus_years(first, k), _plus_years(first, k + 2)
        test_end = _plus_years(first, k + 3)
        w = windows[k]
        assert [_ns(w[c]) for c in ("train_start", "train_end", "test_start", "test_end")] == [
            start,
            train_end,
            train_end,
            test_end,
        ]
        train = _cut(lines, ts, start, train_end, tmp_path / f"w{k}/train/orcl.csv")
        scores = []
        for params in COMBOS:
            stats = _run(train, params).statistics  # type: ignore[attr-defined]
            scores.append(-math.inf if math.isnan(stats.sharpe) else stats.sharpe)
        best = COMBOS[int(np.argmax(scores))]  # the first of equals, as the sweep
        assert w["params"] == f"fast={best['fast']} slow={best['slow']}"
        assert w["train_objective"] == max(scores)
        test = _run(_cut(lines, ts, train_end, test_end, tmp_path / f"w{k}/test/orcl.csv"), best)
        assert w["test_total_return"] == test.statistics.total_return  # type: ignore[attr-defined]
        ran = {r["run"]: r["output_hash"] for r in result.table.to_pylist()}
        assert ran[w["test_run"]] == test.output_hash  # type: ignore[attr-defined]
        equity = test.equity()["equity"].to_numpy()  # type: ignore[attr-defined]
        scaled = equity * (level / equity[0])
        level = float(scaled[-1])
        expected_curve += scaled.tolist()
        k += 1
    assert k == len(windows) == 8
    assert curve["equity"].to_pylist() == pytest.approx(expected_curve, rel=1e-12)
    assert curve["window"].to_pylist() == sorted(curve["window"].to_pylist())
    # The page: the stitched curve, the windows, the best test window's tear sheet (re-run:
    # the sweep kept summaries only).
    assert main(["report", str(tmp_path / "sweep")]) == 0
    page = (tmp_path / "sweep/report.html").read_text()
    assert "stitched out-of-sample equity" in page
    assert windows[0]["params"] in page
    assert (tmp_path / "sweep/best-trial.html").is_file()


def test_walk_forward_specs() -> None:
    spec = parse_walk_forward("train=2y,test=6m")
    assert (str(spec.train), str(spec.test), str(spec.step)) == ("2y", "6m", "6m")
    assert str(parse_walk_forward("test=1w,train=30d,step=2w").step) == "2w"
    for bad in ("train=2y", "train=2y,test=0m", "train=2y,test=6q", "train=2y,test=6m,x=1d"):
        with pytest.raises(WalkForwardError):
            parse_walk_forward(bad)


def test_walk_forward_needs_enough_data(tmp_path: Path) -> None:
    with pytest.raises(WalkForwardError, match="too short for one window"):
        optimize(
            "sma-cross",
            [ORCL_2005],
            ["fast=5", "slow=20"],
            walk_forward="train=20y,test=1y",
            workers=1,
            out=tmp_path,
        )


def test_files_read_with_a_column_map(tmp_path: Path) -> None:
    """``--columns`` reaches every trial and the window cuts: the same bars under another
    header give the same windows, choices and out-of-sample returns."""
    from admf.data.bars import ColumnMap
    from admf.data.source import ReadOptions

    lines = ORCL_2005.read_text().splitlines(keepends=True)
    renamed = tmp_path / "broker.csv"
    renamed.write_text("day,o,h,l,c,adj,v\n" + "".join(lines[1:]))
    columns = ColumnMap.parse("timestamp=day,open=o,high=h,low=l,close=c,volume=v")
    space = {"fast": [5, 10], "slow": [30]}
    ours = optimize(
        "sma-cross",
        [renamed],
        space,
        walk_forward="train=3y,test=2y",
        workers=2,
        out=tmp_path / "mapped",
        summaries_only=True,
        read=ReadOptions(columns=columns),
    )
    plain = optimize(
        "sma-cross",
        [ORCL_2005],
        space,
        walk_forward="train=3y,test=2y",
        workers=2,
        out=tmp_path / "plain",
        summaries_only=True,
    )
    assert ours.walk_forward is not None
    assert plain.walk_forward is not None
    assert ours.walk_forward.windows.num_rows == 4  # trains end 2008, 2010, 2012, 2014
    assert ours.walk_forward.windows.to_pylist() == plain.walk_forward.windows.to_pylist()
    assert ours.walk_forward.equity.equals(plain.walk_forward.equity)
    assert (tmp_path / "mapped/data/w000-test/broker.csv").read_text().startswith("day,o,h")
