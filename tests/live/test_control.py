"""``admf live ctl LOG pause|resume|flatten|stop`` on a real venue: a session trading through
the ``alpaca`` adapter on the paper exchange (over loopback), controlled from another
process. A pause holds new entries back at the gate and a resume lets them out again; a
flatten cancels the resting orders and closes the position at the venue, and new entries are
refused after it; the node's orders, fills and position equal the venue's, and the log
replays exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from admf.events import BUY, SCALE, SELL, Flag, Kind
from admf.live.codes import LiveCode
from admf.live.control import send_command
from admf.live.session import Ending, LiveSession, LiveSpec, run_session
from admf.replay import read_recording, replay

from .conftest import KEY, SECRET, Exchange, alpaca_options, live_records, venue_agrees

ROOT = Path(__file__).resolve().parents[2]
QTY = 10
OPEN = ("new", "accepted", "partially_filled")


def _wait(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _admf(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, APCA_API_KEY_ID=KEY, APCA_API_SECRET_KEY=SECRET)
    return subprocess.run(
        [sys.executable, "-m", "admf", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _start(spec: LiveSpec, root: Path) -> tuple[LiveSession, threading.Thread, list[Ending]]:
    """Starts a session in a thread; its ending goes into the list."""
    session = LiveSession.create(spec, root)
    result: list[Ending] = []
    thread = threading.Thread(target=lambda: result.append(run_session(session)))
    thread.start()
    return session, thread, result


def _entries(events: np.ndarray, after: int, before: int) -> np.ndarray:
    """The strategy's buys (limit orders) between two seqs."""
    submits = events[
        (events["kind"] == Kind.ORDER_SUBMIT)
        & (events["side"] == BUY)
        & ((events["flags"] & Flag.MARKET) == 0)
    ]
    return submits[(submits["seq"] > after) & (submits["seq"] < before)]


def test_ctl_pauses_resumes_and_flattens_a_session_on_the_venue(
    tmp_path: Path, exchange: Exchange, credentials: tuple[str, str]
) -> None:
    options = {**alpaca_options(exchange), "time_in_force": "gtc"}
    spec = LiveSpec(
        strategy="tests.live.strategies:Ladder",
        symbols=("ORCL",),
        data_adapter="alpaca",
        exec_adapter="alpaca",
        params={"qty": QTY, "every": 2},
        options=options,
        duration=20.0,  # a safety net: the test stops it
    )
    session, thread, result = _start(spec, tmp_path)
    run = session.run_dir
    try:
        _wait(exchange.data_clients)  # the session subscribed: the market data may start
        exchange.play(20.0)

        def resting() -> int:
            return sum(1 for o in exchange.orders() if o["status"] in OPEN)

        _wait(lambda: exchange.position() == QTY * SCALE and resting() >= 1)
        send_command(run, "pause")
        time.sleep(0.1)  # an entry on its way when the pause came may still arrive
        at_pause = len(exchange.orders())
        time.sleep(0.5)  # 10 bars: 5 entries, all held back
        assert len(exchange.orders()) == at_pause
        send_command(run, "resume")
        _wait(lambda: len(exchange.orders()) > at_pause)
        held = exchange.position()
        assert resting() >= 2
        flatten = _admf("live", "ctl", str(run), "flatten")
        assert flatten.returncode == 0, flatten.stderr
        _wait(lambda: exchange.position() == 0 and resting() == 0)
        time.sleep(0.1)
        at_flatten = len(exchange.orders())
        time.sleep(0.5)  # new entries are refused from now on
        assert len(exchange.orders()) == at_flatten
        send_command(run, "stop")
    finally:
        thread.join(timeout=30)
    assert result == [Ending.FINISHED], session.reason
    recording = read_recording(run)
    events = recording.events
    records = {
        code: live_records(events, code)
        for code in (LiveCode.PAUSE, LiveCode.RESUME, LiveCode.FLATTEN, LiveCode.STOP)
    }
    for code, found in records.items():
        assert len(found) == 1, code
    pause, resume, flat, stop = (int(found["seq"][0]) for found in records.values())
    assert pause < resume < flat < stop
    outputs = (events["flags"] & Flag.INPUT) == 0
    rejected = events[(events["kind"] == Kind.ORDER_REJECTED) & outputs]
    refused_ids = set(rejected["order_id"].tolist())

    def refused_as_paused(entries: np.ndarray) -> bool:
        for e in entries:
            (at,) = np.flatnonzero(rejected["order_id"] == e["order_id"])
            row = int(np.flatnonzero(events["seq"] == rejected["seq"][at])[0])
            if b"paused" not in bytes(recording.payloads[row] or b""):
                return False
        return True

    # Paused: every entry refused at the gate; resumed: entries go out again.
    while_paused = _entries(events, pause, resume)
    assert len(while_paused) >= 3
    assert set(while_paused["order_id"].tolist()) <= refused_ids
    assert refused_as_paused(while_paused)
    resumed = _entries(events, resume, flat)
    assert len(resumed) >= 1
    assert not set(resumed["order_id"].tolist()) & refused_ids
    # Flatten: a cancel of every order open (every resting buy: none fills), one market
    # sell of the whole position.
    after = events[events["seq"] > flat]
    cancels = after[after["kind"] == Kind.ORDER_CANCEL]
    placed = _entries(events, 0, flat)
    placed = placed[~np.isin(placed["order_id"], list(refused_ids))]
    assert sorted(cancels["order_id"].tolist()) == sorted(placed["order_id"].tolist())
    sells = after[(after["kind"] == Kind.ORDER_SUBMIT) & (after["side"] == SELL)]
    assert len(sells) == 1
    assert int(sells["qty"][0]) == held
    assert int(sells["flags"][0]) & Flag.MARKET
    # After it, every entry is refused (the session is paused).
    later = _entries(events, flat, stop)
    assert len(later) >= 3
    assert set(later["order_id"].tolist()) <= refused_ids
    assert refused_as_paused(later)
    # The venue agrees: the resting orders canceled, the position closed, the fills equal.
    venue = venue_agrees(events, exchange)
    by_id = {o["client_order_id"].rsplit("-", 1)[1]: o for o in venue}
    for e in cancels:
        assert by_id[str(int(e["order_id"]))]["status"] == "canceled"
    assert by_id[str(int(sells["order_id"][0]))]["status"] == "filled"
    assert exchange.position() == 0
    assert session.node.portfolio.qty_fx(1) == 0
    assert session.tracker.positions.get(1, 0) == 0
    replayed = _admf("replay", str(run))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_a_flatten_ends_flat_when_entries_on_their_way_fill(
    tmp_path: Path, exchange: Exchange, credentials: tuple[str, str]
) -> None:
    """The venue holds each request back (a delayed acknowledgement) while the strategy buys
    at market every other bar: at the flatten, entries are on their way, and they fill
    before their cancels are handled. The gate's closing order covers only what was held
    then; the session sees what is left once every order has its answer and closes it with
    another ``FLATTEN`` record. At the end the venue is flat and agrees with the node."""
    spec = LiveSpec(
        strategy="tests.live.strategies:Accumulate",
        symbols=("ORCL",),
        data_adapter="alpaca",
        exec_adapter="alpaca",
        params={"qty": 1, "every": 2},
        options=alpaca_options(exchange),
        duration=20.0,  # a safety net: the test stops it
    )
    session, thread, result = _start(spec, tmp_path)
    run = session.run_dir
    try:
        _wait(exchange.data_clients)  # the session subscribed: the market data may start
        exchange.play(20.0)
        _wait(lambda: exchange.position() >= 2 * SCALE)
        exchange.set_faults({"ack_delay_ms": 400.0})
        time.sleep(0.3)  # entries wait at the venue
        send_command(run, "flatten")
        execution = session.execution
        assert execution is not None

        def settled() -> bool:
            return not execution.busy() and not session.tracker.open_orders()

        _wait(lambda: settled() and exchange.position() == 0, seconds=20.0)
        time.sleep(0.6)
        send_command(run, "stop")
    finally:
        thread.join(timeout=30)
    assert result == [Ending.FINISHED], session.reason
    events = read_recording(run).events
    flattens = live_records(events, LiveCode.FLATTEN)
    assert flattens["aux"].tolist()[0] == 0  # the command
    assert len(flattens) >= 2  # and what the session added: entries filled after it
    assert set(flattens["aux"].tolist()[1:]) == {1}
    venue_agrees(events, exchange)
    assert exchange.position() == 0
    assert session.node.portfolio.qty_fx(1) == 0
    assert replay(run).identical
