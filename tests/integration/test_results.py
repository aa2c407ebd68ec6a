"""What a user reads after a run: the summary agrees with the log, annualized figures only
where the period supports them, exit codes, replay parameters, and the CLI's checks before a
run."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from admf import Kind
from admf.backtest import BacktestSettings, backtest
from admf.cli import main
from admf.errors import AdmfError
from admf.log import query
from admf.replay import replay_as_backtest
from admf.risk import RiskLimits
from admf.summary import RunSummary

ROOT = Path(__file__).resolve().parents[2]
ORCL = str(resources.files("admf.sample") / "orcl-2005-2014.csv")
QUOTES = str(ROOT / "tests/data/usdjpy-quotes-100.csv")
AAPL = str(ROOT / "tests/data/lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv")
CME = ROOT.parent / "shared/data/market/nautilus__databento_esh4-glbx-mdp3-20231225.mbo.dbn.zst"
STRATEGIES = "tests.integration.strategies"


def counts_in_log(root: Path) -> dict[str, int]:
    """The counts a summary shows, answered by SQL over the log."""
    sql = (
        "SELECT (SELECT count(*) FROM errors) AS errors,"
        " (SELECT count(*) FROM orders WHERE event = 'submit') AS orders,"
        " (SELECT count(*) FROM orders WHERE event = 'rejected') AS rejected,"
        " (SELECT count(*) FROM fills) AS fills,"
        " (SELECT count(*) FROM risk WHERE reason <> 0) AS risk_denied,"
        " (SELECT count(*) FROM events) AS events,"
        " (SELECT count(*) FROM errors WHERE message LIKE '%\"handler\"%') AS handler_errors"
    )
    row: dict[str, int] = query(root, sql).to_pylist()[0]
    return row


def assert_summary_is_the_log(summary: RunSummary, root: Path) -> None:
    for name, value in counts_in_log(root).items():
        assert summary[name] == value, name


@pytest.mark.skipif(not CME.exists(), reason="the CME MBO file is in the shared data")
def test_databento_summary_counts_the_logged_errors_and_has_statistics(tmp_path: Path) -> None:
    result = backtest("market-maker", [CME], log_dir=tmp_path)
    summary = result.summary
    assert summary is not None
    assert summary.errors > 3_000  # the pre-open deltas the venue refused
    assert summary.handler_errors == 0
    assert_summary_is_the_log(summary, tmp_path)
    shown = summary.formatted()
    assert shown["errors"].startswith(f"{summary.errors:,} (0 raised by handlers")
    # no trades or bars in MBO book deltas: the curve is marked at the run's own fills
    assert summary.statistics is not None
    assert summary.marked_at is not None
    assert "fills" in shown["equity marked at"]
    assert summary.statistics.trades == 0  # the market maker never got back to flat
    assert summary.statistics.exposure == pytest.approx(1.0)


def test_a_47_second_run_is_not_annualized(tmp_path: Path) -> None:
    result = backtest("market-maker", [AAPL], log_dir=tmp_path)
    summary = result.summary
    assert summary is not None
    stats = summary.statistics
    assert stats is not None
    for figure in ("cagr", "sharpe", "sortino", "annual_volatility", "annual_turnover"):
        assert math.isnan(summary[figure]), figure
    assert not math.isnan(stats.total_return)
    assert stats.not_annualized is not None
    assert "47.6 seconds" in stats.not_annualized
    text = " ".join(summary.formatted().values())
    assert "inf" not in text
    assert "a year" not in text
    assert_summary_is_the_log(summary, tmp_path)


def test_summary_is_numbers_with_a_formatted_view() -> None:
    limits = RiskLimits(max_position=2_500)
    settings = BacktestSettings(initial_cash=10_000_000, risk=limits)
    result = backtest(f"{STRATEGIES}:Greedy", [ORCL], settings=settings)
    summary = result.summary
    assert isinstance(summary, RunSummary)
    assert summary.orders == len(result.of_kind(Kind.ORDER_SUBMIT)) == 2_517
    assert summary.rejected == summary.risk_denied == 2_515
    assert isinstance(summary["sharpe"], float)
    assert summary["fills"] == 2
    assert summary.statistics is result.statistics
    assert summary.formatted()["rejected orders"] == "2,515"
    assert summary.as_dict()["total_return"] == result.statistics.total_return  # type: ignore[union-attr]
    with pytest.raises(KeyError, match="'nope' is not in the summary"):
        summary["nope"]


def test_orders_view_reason_is_the_reject_text_only(tmp_path: Path) -> None:
    limits = RiskLimits(max_position=2_500)
    settings = BacktestSettings(initial_cash=10_000_000, risk=limits)
    backtest(f"{STRATEGIES}:Greedy", [ORCL], settings=settings, log_dir=tmp_path)
    rows = query(
        tmp_path,
        "SELECT event, count(*) AS n, count(reason) AS with_reason, min(reason) AS reason "
        "FROM orders GROUP BY event ORDER BY event",
    ).to_pylist()
    by_event = {row["event"]: row for row in rows}
    assert by_event["submit"]["with_reason"] == 0
    assert by_event["rejected"]["with_reason"] == by_event["rejected"]["n"] == 2_515
    assert isinstance(by_event["rejected"]["reason"], str)
    assert "risk" in by_event["rejected"]["reason"]


def test_orders_view_shows_the_value_of_an_order_sized_by_value(tmp_path: Path) -> None:
    backtest(f"{STRATEGIES}:ValueBuyer", [ORCL], log_dir=tmp_path)
    rows = query(tmp_path, "SELECT event, value, reason FROM orders ORDER BY seq").to_pylist()
    assert rows[0]["event"] == "submit"
    assert rows[0]["value"] == 100_000  # all the cash
    assert rows[0]["reason"] is None


def test_handler_errors_exit_non_zero_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backtest", "--strategy", f"{STRATEGIES}:Flaky", "--data", ORCL, "--no-progress"]
    assert main([*args, "--log", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "handlers raised 1 time (admf query " in captured.err
    assert "--allow-errors" in captured.err
    assert "1 (1 raised by handlers" in captured.out
    assert main([*args, "--allow-errors"]) == 0
    assert main(["backtest", "--strategy", "sma-cross", "--data", ORCL, "--no-progress"]) == 0


def test_replay_as_backtest_keeps_the_recorded_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = backtest("sma-cross", [ORCL], {"fast": 5, "slow": 50}, log_dir=tmp_path, run_id="a")
    assert base.run_dir is not None
    result = replay_as_backtest(base.run_dir, params={"fast": "10"})
    assert result.params == {"fast": "10", "slow": 50}
    direct = backtest("sma-cross", [ORCL], {"fast": 10, "slow": 50})
    assert result.output_hash == direct.output_hash
    assert replay_as_backtest(base.run_dir).output_hash == base.output_hash
    # another strategy gets only the parameters given
    other = replay_as_backtest(base.run_dir, f"{STRATEGIES}:Rebalancer", {"qty": "3"})
    assert other.params == {"qty": "3"}
    # a bad parameter is refused before a new log is created
    new_logs = tmp_path / "new"
    with pytest.raises(AdmfError, match="has no parameter speed"):
        replay_as_backtest(base.run_dir, params={"speed": "1"}, log_dir=new_logs)
    assert not new_logs.exists()
    args = ["replay", str(base.run_dir), "--as-backtest", "--param", "fast=10"]
    assert main(args) == 0
    assert direct.output_hash[:32] in capsys.readouterr().out.replace("│", "")


def test_a_bad_parameter_leaves_no_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    args = ["backtest", "--strategy", "sma-cross", "--data", ORCL, "--no-progress"]
    assert main([*args, "--param", "fast=50", "--param", "slow=10", "--log", str(runs)]) == 2
    assert "need 0 < fast < slow" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())
    # a setting refused when the run is wired (or earlier) leaves nothing either
    with pytest.raises((AdmfError, ValueError), match="fill_at"):
        backtest("sma-cross", [ORCL], settings=BacktestSettings(fill_at="bogus"), log_dir=runs)
    assert not runs.exists() or not any(runs.iterdir())


def test_report_into_a_missing_directory_fails_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    args = ["backtest", "--strategy", "sma-cross", "--data", ORCL, "--no-progress"]
    missing = tmp_path / "no" / "r.html"
    assert main([*args, "--log", str(runs), "--report", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"the directory {missing.parent} does not exist" in err
    assert not runs.exists()  # nothing ran
    assert main([*args, "--report", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_argument_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["backtest", "--strategy", "sma-cross"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "admf backtest: error: the following arguments are required: --data "
        "(see admf backtest --help)\n"
    )
    with pytest.raises(SystemExit):
        main(["backtest", "--strategy", "sma-cross", "--data", ORCL, "--cash", "lots"])
    assert capsys.readouterr().err.count("\n") == 1


def test_a_strategy_that_handles_no_event_of_the_data_is_warned_about(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["backtest", "--strategy", "sma-cross", "--data", QUOTES, "--no-progress"]
    assert main(args) == 0
    captured = capsys.readouterr()
    warning = (
        "admf backtest: warning: sma-cross received no event it handles: it has on_bar, "
        "the data has QUOTE"
    )
    assert warning in captured.err
    assert "warning" in captured.out  # and in the summary table
    quiet = backtest("sma-cross", [ORCL]).summary
    assert quiet is not None
    assert quiet.warnings == ()


def test_sigint_exits_130_and_keeps_what_was_logged(tmp_path: Path) -> None:
    started = tmp_path / "started"
    runs = tmp_path / "runs"
    cli = "import sys; from admf.cli import main; sys.exit(main(sys.argv[1:]))"
    args = [sys.executable, "-c", cli, "backtest", "--strategy", f"{STRATEGIES}:Sleepy"]
    args += ["--data", ORCL, "--param", f"started={started}", "--log", str(runs)]
    args += ["--run-id", "cut", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"admf backtest: interrupted" in err
    assert b"output hash" not in out  # no summary of a run that did not complete
    # The kernel hands events to the log in chunks: a run cut before its first chunk leaves no
    # run directory; a later cut leaves the chunks logged so far, readable.
    run_dir = runs / "run=cut"
    if run_dir.exists():
        logged = query(run_dir, "SELECT count(*) AS n FROM bars").to_pylist()[0]["n"]
        assert logged < 2_517
    else:
        assert not runs.exists() or not any(runs.iterdir())
