"""Stopping a live session: SIGINT and SIGTERM with an order open at the venue, cancelling it
or leaving it; and ``admf live ctl`` from another process (pause, flatten, stop)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from admf import Event, Strategy
from admf.backtest import BacktestSettings
from admf.events import Flag, Kind
from admf.live.codes import LiveCode
from admf.live.control import send_command
from admf.live.session import Ending, LiveSession, LiveSpec, run_session
from admf.replay import read_recording, replay

from .conftest import KEY, ORCL, SECRET, Exchange, alpaca_options

ROOT = Path(__file__).resolve().parents[2]


def _records(events: np.ndarray, code: LiveCode) -> np.ndarray:
    live = (events["kind"] == Kind.CUSTOM) & ((events["flags"] & Flag.INPUT) != 0)
    return events[live & (events["order_id"] == code)]


def _wait(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


@pytest.mark.parametrize(
    ("sig", "keep"),
    [(signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["sigint-cancel", "sigterm-keep"],
)
def test_signal_stops_the_session_cleanly(
    tmp_path: Path, exchange: Exchange, sig: signal.Signals, keep: bool
) -> None:
    options = alpaca_options(exchange)
    command = [
        sys.executable, "-m", "admf", "live",
        "--strategy", "tests.live.strategies:Resting",
        "--data-adapter", "alpaca", "--exec-adapter", "alpaca", "--symbol", "ORCL",
        "--log", str(tmp_path), "--stop-deadline", "5",
    ]  # fmt: skip
    for name in ("trading_url", "data_url", "backoff_min", "timeout"):
        command += ["--adapter-option", f"{name}={options[name]}"]
    command += ["--adapter-option", "time_in_force=gtc"]
    if keep:
        command.append("--keep-open-orders")
    env = dict(os.environ, APCA_API_KEY_ID=KEY, APCA_API_SECRET_KEY=SECRET)
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait(lambda: exchange.data_clients() > 0)
        exchange.play(20.0)
        _wait(lambda: any(o["status"] in ("new", "accepted") for o in exchange.orders()))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    expected = Ending.SIGINT if sig == signal.SIGINT else Ending.SIGTERM
    assert proc.returncode == expected, err
    assert SECRET not in out + err
    (order,) = exchange.orders()
    assert order["status"] in (("new", "accepted") if keep else ("canceled",))
    (run,) = tmp_path.glob("run=*")
    events = read_recording(run).events  # the log is whole and sealed
    assert list(run.glob("events-*.parquet"))
    (stop,) = _records(events, LiveCode.STOP)
    assert stop["aux"] == (0 if keep else 1)
    canceled = events[events["kind"] == Kind.ORDER_CANCELED]
    assert len(canceled) == (0 if keep else 1)
    assert replay(run).identical


def test_ctl_pauses_flattens_and_stops_a_session(tmp_path: Path) -> None:
    spec = LiveSpec(
        strategy="tests.live.strategies:Flip",
        symbols=("ORCL",),
        data_adapter="replay",
        params={"every": 2, "qty": 10},
        options={"data": [ORCL], "speed": 86_400 * 25.0},  # 25 bars a second
    )
    session = LiveSession.create(spec, tmp_path)
    result: list[Ending] = []
    thread = threading.Thread(target=lambda: result.append(run_session(session)))
    thread.start()
    run = session.run_dir
    time.sleep(0.6)
    send_command(run, "pause")
    time.sleep(0.5)
    send_command(run, "resume")
    time.sleep(0.4)
    send_command(run, "flatten")
    time.sleep(0.3)
    send_command(run, "stop")
    thread.join(timeout=20)
    assert result == [Ending.FINISHED]
    assert session.reason == "admf live ctl stop"
    events = read_recording(run).events
    for code in (LiveCode.PAUSE, LiveCode.RESUME, LiveCode.FLATTEN, LiveCode.STOP):
        assert len(_records(events, code)) == 1, code
    pause = int(_records(events, LiveCode.PAUSE)["seq"][0])
    resume = int(_records(events, LiveCode.RESUME)["seq"][0])
    rejected = events[events["kind"] == Kind.ORDER_REJECTED]
    paused_rejects = rejected[(rejected["seq"] > pause) & (rejected["seq"] < resume)]
    buys = events[(events["kind"] == Kind.ORDER_SUBMIT) & (events["side"] == 1)]
    assert len(buys[(buys["seq"] > pause) & (buys["seq"] < resume)]) == len(paused_rejects)
    assert session.node.portfolio.qty_fx(1) == 0  # flattened, and paused since
    assert replay(run).identical
    with pytest.raises(Exception, match="no live session took the command"):
        send_command(run, "pause", timeout=0.3)


class Raising(Strategy):
    def on_bar(self, bar: Event) -> None:
        raise RuntimeError("boom")


def test_a_failing_kernel_ends_the_session_with_exit_1(tmp_path: Path) -> None:
    spec = LiveSpec(
        strategy="tests.live.test_shutdown:Raising",
        symbols=("ORCL",),
        data_adapter="replay",
        options={"data": [ORCL], "speed": 86_400 * 50.0},
        settings=BacktestSettings(on_error="stop"),
    )
    session = LiveSession.create(spec, tmp_path)
    started = time.monotonic()
    assert run_session(session) == Ending.FAILED
    assert time.monotonic() - started < 4  # no wait for a STOP nobody applies
    assert "boom" in session.reason
    events = read_recording(session.run_dir).events
    assert (events["kind"] == Kind.ERROR).sum() == 1


def test_a_stopped_dry_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    spec = LiveSpec(
        strategy="tests.live.strategies:Flip",
        symbols=("ORCL",),
        data_adapter="replay",
        params={"every": 2, "qty": 10},
        options={"data": [ORCL], "speed": 86_400 * 80.0},  # 80 bars a second
        duration=0.5,
    )
    session = LiveSession.create(spec, tmp_path)
    assert run_session(session) == Ending.FINISHED
    run = session.run_dir
    first = int((read_recording(run).events["kind"] == Kind.BAR).sum())
    assert 0 < first < 100
    for _ in range(8):
        session = LiveSession.resume(run)
        assert run_session(session) == Ending.FINISHED
        if session.reason == "the market data ended":
            break
    events = read_recording(run).events
    bars = events[events["kind"] == Kind.BAR]
    from admf.data.bars import read_bars

    assert bars["price"].tolist() == read_bars(ORCL, instrument=1)["price"].tolist()
    assert len(_records(events, LiveCode.RESUMED)) >= 1
    assert replay(run).identical
