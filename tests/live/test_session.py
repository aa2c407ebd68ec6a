"""Live sessions end to end: a dry run (replayed history, simulated venue) and a strategy
trading through the ``alpaca`` adapter on the paper exchange over loopback; each log replays
exactly and as a backtest."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from admf.cli import main
from admf.events import Flag, Kind
from admf.live.codes import LiveCode
from admf.live.session import Ending, LiveSession, LiveSpec, run_session
from admf.replay import read_recording, replay, replay_as_backtest

from .conftest import ORCL, SECRET, Exchange, alpaca_options, node_fills, play_when_connected

FLIP = "tests.live.strategies:Flip"


def _run_dir(root: Path) -> Path:
    (run,) = root.glob("run=*")
    return run


def test_dry_run_records_and_replays_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "live",
            "--strategy", "sma-cross", "--param", "fast=3", "--param", "slow=8",
            "--data-adapter", "replay", "--data", ORCL, "--speed", "0",
            "--log", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    run = _run_dir(tmp_path)
    rec = read_recording(run)
    inputs = rec.inputs
    assert (inputs["kind"] == Kind.BAR).sum() == 100
    # Every bar is preceded by a CLOCK reading carrying its venue time.
    clocks = inputs[inputs["kind"] == Kind.CLOCK]
    assert len(clocks) >= 100
    assert (clocks["aux"] > 0).sum() == 100
    report = replay(run)
    assert report.identical, report.first_difference
    assert main(["replay", str(run), "--as-backtest"]) == 0
    out = capsys.readouterr().out
    assert "fills matched: 9; live only: 0; simulation only: 0" in out
    assert "P&L difference (simulation - live): 0.00" in out


def test_a_changed_recording_is_caught_by_the_replay(tmp_path: Path) -> None:
    assert main(
        ["live", "--strategy", FLIP, "--data-adapter", "replay", "--data", ORCL,
         "--speed", "0", "--log", str(tmp_path)]
    ) == 0  # fmt: skip
    run = _run_dir(tmp_path)
    rec = read_recording(run)
    bars = np.flatnonzero(rec.events["kind"] == Kind.BAR)
    # The same inputs with one close changed: the strategy's outputs must move.
    from admf.live.record import rerun_live
    from admf.log.manifest import Manifest

    events = rec.events.copy()
    events["price"][bars[10]] += 10**9
    collector, _ = rerun_live(rec.config, Manifest.read(run).run_id, events, rec.payloads)
    assert collector.events().tobytes() != rec.events.tobytes()


def test_alpaca_session_against_the_paper_exchange(
    tmp_path: Path,
    exchange: Exchange,
    credentials: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = LiveSpec(
        strategy=FLIP,
        symbols=("ORCL",),
        data_adapter="alpaca",
        exec_adapter="alpaca",
        params={"every": 3, "qty": 10},
        options=alpaca_options(exchange),
        duration=2.5,
    )
    session = LiveSession.create(spec, tmp_path)
    play_when_connected(exchange, 60.0)
    ending = run_session(session)
    assert ending == Ending.FINISHED, session.reason
    run = session.run_dir
    rec = read_recording(run)
    events = rec.events
    assert (events["kind"] == Kind.BAR).sum() >= 30
    # The venue and the node agree: same orders, same fills, same position.
    venue = exchange.orders()
    ids = [o["client_order_id"] for o in venue]
    assert len(ids) == len(set(ids)) >= 5
    submits = events[events["kind"] == Kind.ORDER_SUBMIT]
    assert len(submits) == len(venue)
    fills = node_fills(events)
    filled = collections.Counter()
    for f in fills:
        filled[int(f["order_id"])] += int(f["qty"])
    for o in venue:
        order_id = int(o["client_order_id"].rsplit("-", 1)[1])
        assert filled[order_id] == o["filled_qty"], o
    assert session.node.portfolio.qty_fx(1) == exchange.position()
    # The session reconciled before it traded.
    custom = events[(events["kind"] == Kind.CUSTOM) & ((events["flags"] & Flag.INPUT) != 0)]
    first_submit = int(submits["seq"][0])
    reconciled = custom[custom["order_id"] == LiveCode.RECONCILED]
    assert int(reconciled["seq"][0]) < first_submit
    # The order command is in the log before the venue's answer.
    accepted = events[(events["kind"] == Kind.ORDER_ACCEPTED)]
    assert int(accepted["seq"][0]) > first_submit
    # Exact replay, and the comparison with a simulation of the same market data.
    report = replay(run)
    assert report.identical, report.first_difference
    result = replay_as_backtest(run)
    assert result.portfolio.fills > 0
    assert main(["replay", str(run), "--as-backtest"]) == 0
    out = capsys.readouterr().out
    assert "fills matched:" in out
    assert "P&L live:" in out
    assert "orders only live:" in out
    # Credentials never reach the log, the manifest or the console.
    for path in run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in out


def test_a_recorded_session_is_played_again_as_live_data(tmp_path: Path) -> None:
    """The replay adapter plays a live log's market data (a dry run against history)."""
    first = tmp_path / "first"
    assert main(
        ["live", "--strategy", FLIP, "--data-adapter", "replay", "--data", ORCL,
         "--speed", "0", "--log", str(first)]
    ) == 0  # fmt: skip
    recorded = read_recording(_run_dir(first))
    spec = LiveSpec(
        strategy=FLIP,
        symbols=("ORCL",),
        data_adapter="replay",
        options={"log": str(_run_dir(first)), "speed": 0},
    )
    session = LiveSession.create(spec, tmp_path / "second")
    assert run_session(session) == Ending.FINISHED
    again = read_recording(session.run_dir)
    bars = [r.events[r.events["kind"] == Kind.BAR] for r in (recorded, again)]
    for field in ("price", "qty", "aux", "order_id", "payload"):
        assert bars[0][field].tolist() == bars[1][field].tolist()
    fills = [r.events[r.events["kind"] == Kind.FILL] for r in (recorded, again)]
    assert fills[0]["price"].tolist() == fills[1]["price"].tolist()


def test_commands_reach_the_venue_only_once_the_log_holds_them(tmp_path: Path) -> None:
    from . import adapters

    spec = LiveSpec(
        strategy=FLIP,
        symbols=("ORCL",),
        data_adapter="replay",
        exec_adapter="tests.live.adapters:make_checking",
        params={"every": 2, "qty": 10},
        options={"data": [ORCL], "speed": 0},
    )
    session = LiveSession.create(spec, tmp_path)
    adapters.LOG_DIRS.append(session.run_dir)
    assert run_session(session) == Ending.FINISHED, session.reason
    venue = session.execution
    assert isinstance(venue, adapters.CheckingExecution)
    assert len(venue.seen) >= 40
    assert all(held for _, held in venue.seen)
    assert session.node.portfolio.fills == len(venue.tracker.executions) >= 40
    assert replay(session.run_dir).identical


def test_risk_limits_apply_live(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["live", "--strategy", FLIP, "--param", "qty=10", "--data-adapter", "replay",
         "--data", ORCL, "--speed", "0", "--max-order-qty", "5", "--log", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    events = read_recording(_run_dir(tmp_path)).events
    submits = events[events["kind"] == Kind.ORDER_SUBMIT]
    assert len(submits) > 0
    assert (events["kind"] == Kind.RISK).sum() == len(submits)
    assert (events["kind"] == Kind.ORDER_REJECTED).sum() == len(submits)
    assert (events["kind"] == Kind.FILL).sum() == 0
    assert replay(_run_dir(tmp_path)).identical


def test_timers_fire_on_wall_time_and_again_in_the_replay(tmp_path: Path) -> None:
    spec = LiveSpec(
        strategy="tests.live.strategies:Timed",
        symbols=("ORCL",),
        data_adapter="replay",
        params={"every_ms": 250, "times": 3},
        options={"data": [ORCL], "speed": 86_400 * 20.0},  # 20 bars a second
        duration=1.4,
    )
    session = LiveSession.create(spec, tmp_path)
    assert run_session(session) == Ending.FINISHED
    rec = read_recording(session.run_dir)
    events = rec.events
    timers = events[events["kind"] == Kind.TIMER]
    assert len(timers) == 3
    # Set in on_start from the session's start (not from 1970), 250 ms apart.
    start = int(rec.config["live"]["start_ns"])
    fired = np.diff(np.concatenate([[start], timers["ts"]]))
    assert (fired >= 250_000_000).all()
    assert (fired < 1_000_000_000).all()
    assert (events["kind"] == Kind.SIGNAL).sum() == 3
    assert replay(session.run_dir).identical


def test_wrong_credentials_fail_the_session_without_showing_them(
    tmp_path: Path, exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-secret-0123456789abcdefghijklmn"
    monkeypatch.setenv("APCA_API_KEY_ID", "PKADMFLIVE0000000001")
    monkeypatch.setenv("APCA_API_SECRET_KEY", wrong)
    spec = LiveSpec(
        strategy=FLIP,
        symbols=("ORCL",),
        data_adapter="alpaca",
        exec_adapter="alpaca",
        options=alpaca_options(exchange),
    )
    session = LiveSession.create(spec, tmp_path)
    assert run_session(session) == Ending.FAILED
    assert "the account answered 40" in session.reason
    assert wrong not in session.reason
    for path in session.run_dir.rglob("*"):
        if path.is_file():
            assert wrong.encode() not in path.read_bytes()
