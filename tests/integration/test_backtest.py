"""Backtests end to end: parity with backtrader, determinism, replay, risk, errors, CLI."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from admf import Kind, Side
from admf.backtest import BacktestSettings, backtest
from admf.cli import main
from admf.errors import AdmfError
from admf.replay import replay, replay_as_backtest
from admf.risk import Reason, RiskLimits
from tests.integration import strategies

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "market"
ORCL = str(resources.files("admf.sample") / "orcl-2005-2014.csv")
SMA = "admf_sma_cross:SmaCross"


def admf_fills(path: str) -> list[tuple[str, str, int, float]]:
    result = backtest(SMA, [path], {"fast": 10, "slow": 30})
    out = []
    for row in result.of_kind(Kind.FILL):
        # Daily bars are stamped at their trading date's session close (16:00 New York), so
        # a fill's date is the trading date, as backtrader dates it.
        ts = datetime.datetime.fromtimestamp(int(row["ts"]) / 1e9, datetime.UTC)
        day = ts.date().isoformat()
        side = "BUY" if row["side"] == Side.BUY else "SELL"
        out.append((day, side, int(row["qty"]) // 10**9, int(row["price"]) / 1e9))
    return out


def same_fills(
    ours: list[tuple[str, str, int, float]], theirs: list[tuple[str, str, int, float]]
) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a[:3] == b[:3]
        assert a[3] == pytest.approx(b[3], abs=1e-9)


@pytest.mark.parametrize(
    "path",
    [
        ORCL,
        *(
            str(SHARED / name)
            for name in ("backtrader__nvda-1999-2014.txt", "backtrader__yhoo-1996-2015.txt")
        ),
    ],
    ids=["orcl-bundled", "nvda", "yhoo"],
)
def test_trades_identical_to_backtrader(path: str) -> None:
    if not Path(path).exists():
        pytest.skip(f"{path} is not here (shared data absent)")
    from tests.integration.backtrader_sma import run_backtrader

    theirs = run_backtrader(path).fills
    ours = admf_fills(path)
    assert len(ours) > 50
    same_fills(ours, theirs)


def _run_in_process(tmp: Path, run_id: str, hashseed: str) -> str:
    code = (
        "from admf.backtest import backtest;"
        f"r = backtest('tests.integration.strategies:Rebalancer', [{ORCL!r}], "
        f"{{'qty': 7}}, log_dir={str(tmp)!r}, run_id={run_id!r});"
        "print(r.output_hash)"
    )
    env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_two_processes_with_different_hash_seeds_give_identical_output(tmp_path: Path) -> None:
    from admf.log import EventLog

    first = _run_in_process(tmp_path, "a", "1")
    second = _run_in_process(tmp_path, "b", "4242")
    assert first == second
    tables = []
    for run_id in ("a", "b"):
        with EventLog.open(tmp_path / f"run={run_id}", read_only=True) as log:
            tables.append(log.read())
    assert tables[0].equals(tables[1])
    assert tables[0].num_rows > 2_518


def test_replay_is_identical_and_finds_the_first_difference(tmp_path: Path) -> None:
    result = backtest(
        "tests.integration.strategies:Rebalancer", [ORCL], {"qty": 3}, log_dir=tmp_path, run_id="r"
    )
    report = replay(tmp_path / "run=r")
    assert report.identical
    assert report.recorded_hash == report.replayed_hash == result.output_hash
    strategies.BEHAVIOUR["buy_every"] = 6
    try:
        diverged = replay(tmp_path / "run=r")
    finally:
        strategies.BEHAVIOUR["buy_every"] = 5
    assert not diverged.identical
    assert diverged.first_difference is not None
    assert diverged.first_difference.startswith("seq ")
    assert diverged.recorded_hash != diverged.replayed_hash


def test_replay_as_backtest_with_another_strategy(tmp_path: Path) -> None:
    backtest(SMA, [ORCL], log_dir=tmp_path, run_id="orig")
    again = replay_as_backtest(tmp_path / "run=orig")
    assert again.output_hash == backtest(SMA, [ORCL]).output_hash
    other = replay_as_backtest(
        tmp_path / "run=orig", SMA, {"fast": 5, "slow": 20}, log_dir=tmp_path / "new"
    )
    assert other.output_hash != again.output_hash
    assert other.run_dir is not None
    assert (other.run_dir / "manifest.json").exists()


def test_signals_payloads_and_the_seeded_rng_are_logged(tmp_path: Path) -> None:
    result = backtest(
        "tests.integration.strategies:Rebalancer",
        [ORCL],
        settings=BacktestSettings(seed=7),
        log_dir=tmp_path,
        run_id="s",
    )
    signals = result.of_kind(Kind.SIGNAL)
    assert len(signals) == 2_517 // 5
    first = result.payloads[int(signals["seq"][0])]
    assert isinstance(first, dict)
    assert first["bar"] == 5
    import random

    assert first["draw"] == random.Random(7).random()
    from admf.log import EventLog

    with EventLog.open(tmp_path / "run=s", read_only=True) as log:
        stored = log.payload(int(signals["seq"][0]))
        assert stored is not None
        assert json.loads(stored) == first
        assert log.manifest.seed == 7


def test_risk_limits_deny_and_log_each_decision() -> None:
    limits = RiskLimits(max_position=2_500)
    result = backtest(
        "tests.integration.strategies:Greedy",
        [ORCL],
        settings=BacktestSettings(initial_cash=10_000_000, risk=limits),
    )
    risk = result.of_kind(Kind.RISK)
    submits = result.of_kind(Kind.ORDER_SUBMIT)
    assert len(risk) == len(submits) == 2_517
    allowed = risk[risk["aux"] == Reason.ALLOWED]
    assert len(allowed) == 2  # 1000 + 1000 fits under 2500, a third would not
    assert set(risk["aux"][risk["aux"] != 0]) == {Reason.MAX_POSITION}
    assert result.portfolio.position(1).qty == 2_000 * 10**9
    rejected = result.of_kind(Kind.ORDER_REJECTED)
    assert len(rejected) == 2_515
    assert "position would be" in result.payloads[int(risk["seq"][-1])]


def test_daily_loss_limit_trips_the_kill_switch() -> None:
    limits = RiskLimits(daily_loss_limit=1.0)
    result = backtest(
        "tests.integration.strategies:Greedy",
        [ORCL],
        settings=BacktestSettings(initial_cash=10_000_000, risk=limits),
    )
    reasons = list(result.of_kind(Kind.RISK)["aux"])
    assert Reason.DAILY_LOSS in reasons
    after = reasons[reasons.index(Reason.DAILY_LOSS) + 1 :]
    assert after
    assert set(after) == {Reason.KILL_SWITCH}


def test_handler_errors_are_events_and_stop_when_asked() -> None:
    result = backtest("tests.integration.strategies:Flaky", [ORCL])
    errors = result.of_kind(Kind.ERROR)
    assert len(errors) == 1
    detail = result.payloads[int(errors["seq"][0])]
    assert detail["handler"] == "Flaky.on_bar"
    assert "flaky strategy failed" in detail["traceback"]
    stopped = backtest(
        "tests.integration.strategies:Flaky", [ORCL], settings=BacktestSettings(on_error="stop")
    )
    assert stopped.kernel.errors == 1
    assert stopped.kernel.stopped is not None
    assert "flaky strategy failed" in stopped.kernel.stopped
    assert len(stopped.of_kind(Kind.BAR)) == 3
    assert stopped.events["kind"][-1] == Kind.ERROR


def test_a_strategy_that_cannot_start_is_logged_and_stops_the_run() -> None:
    result = backtest("tests.integration.strategies:BrokenStart", [ORCL])
    assert result.kernel.stopped is not None
    assert "BrokenStart.start raised KeyError" in result.kernel.stopped
    errors = result.of_kind(Kind.ERROR)
    assert len(errors) == 1
    assert len(result.of_kind(Kind.BAR)) == 0


def test_timers_reach_the_strategy() -> None:
    result = backtest("tests.integration.strategies:Timed", [ORCL])
    timers = result.of_kind(Kind.TIMER)
    assert len(timers) == 1
    bars = result.of_kind(Kind.BAR)
    assert timers["ts"][0] == bars["ts"][0] + 3_600 * 10**9
    assert timers["seq"][0] == bars["seq"][0] + 1


def test_fees_and_slippage_change_fills() -> None:
    plain = backtest(SMA, [ORCL])
    costly = backtest(SMA, [ORCL], settings=BacktestSettings(fee_rate=0.001, slippage_bps=5))
    p, c = plain.of_kind(Kind.FILL), costly.of_kind(Kind.FILL)
    assert (c["aux"] > 0).all()
    buy = p["side"][0] == Side.BUY
    assert c["price"][0] > p["price"][0] if buy else c["price"][0] < p["price"][0]
    assert costly.portfolio.equity() < plain.portfolio.equity()


def test_fill_at_close_fills_on_the_deciding_bar() -> None:
    result = backtest(SMA, [ORCL], settings=BacktestSettings(fill_at="close"))
    fills = result.of_kind(Kind.FILL)
    bars = result.of_kind(Kind.BAR)
    first = fills[0]
    deciding = bars[bars["seq"] < first["seq"]][-1]
    assert first["price"] == deciding["price"]


def test_results_as_arrow_tables() -> None:
    result = backtest(SMA, [ORCL])
    assert result.fills().num_rows == len(result.of_kind(Kind.FILL))
    trades = result.trades()
    assert trades.num_rows > 10
    equity = result.equity()
    assert equity.num_rows == 2_517
    assert equity.column("equity")[0].as_py() == pytest.approx(100_000.0)
    assert result.table().num_rows == len(result.events)
    assert result.statistics is not None
    assert result.statistics.trades == trades.num_rows
    np.testing.assert_allclose(
        float(np.sum(trades.column("pnl").to_numpy())),
        result.portfolio.realized() / 1e9,
        rtol=1e-9,
    )


def test_cli_backtest_report_query_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.html"
    args = ["backtest", "--strategy", "sma-cross", "--data", ORCL, "--param", "fast=5"]
    args += ["--log", str(tmp_path), "--run-id", "cli", "--report", str(report), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Sharpe" in out
    assert "output hash" in out
    assert report.exists()
    assert "plotly" in report.read_text()
    assert main(["replay", str(tmp_path / "run=cli")]) == 0
    assert "identical" in capsys.readouterr().out
    assert main(["query", str(tmp_path), "select count(*) as n from fills"]) == 0
    assert main(["report", str(tmp_path / "run=cli")]) == 0
    assert (tmp_path / "run=cli" / "report.html").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "no-such-strategy", "--data", ORCL], "sma-cross"),
        (["--strategy", SMA, "--data", "/no/such/file.csv"], "no data file at /no/such/file.csv"),
        (["--strategy", SMA, "--data", ORCL, "--param", "speed=3"], "has no parameter speed"),
        (["--strategy", SMA, "--data", ORCL, "--param", "fast=x"], "fast='x'"),
        (["--strategy", SMA, "--data", ORCL, "--param", "fast"], "KEY=VALUE"),
    ],
)
def test_cli_errors_are_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_strategy_type_is_rejected() -> None:
    with pytest.raises(AdmfError, match=r"not a subclass of admf\.Strategy"):
        backtest("json:dumps", [ORCL])
