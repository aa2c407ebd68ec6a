"""Modifying orders through the ``alpaca`` adapter: a replace (``PATCH /v2/orders/{id}``) on
the paper exchange over loopback. The venue's orders (every leg of a replaced order), fills
and position equal the node's; a refused replace leaves the order open; a 5xx or a 504 after
the venue replaced it, and a crash mid-replace, are resolved by asking the venue."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from admf.events import SCALE, Kind
from admf.live.codes import LiveCode
from admf.live.session import Ending, LiveSession, LiveSpec, run_session
from admf.replay import read_recording, replay

from .conftest import (
    KEY,
    SECRET,
    Exchange,
    alpaca_options,
    inputs_of,
    leg_of,
    live_records,
    node_fills,
    play_when_connected,
    venue_agrees,
)


def _spec(strategy: str, options: dict[str, Any], duration: float = 1.6, **params: Any) -> LiveSpec:
    # Daily bars: a day order would expire on the next one.
    options = {**options, "time_in_force": "gtc"}
    return LiveSpec(
        strategy=f"tests.live.strategies:{strategy}",
        symbols=("ORCL",),
        data_adapter="alpaca",
        exec_adapter="alpaca",
        params=params,
        options=options,
        duration=duration,
    )


@pytest.fixture
def partial_exchange() -> Iterator[Exchange]:
    """Fills on bars are partial nine times in ten (seeded): an order fills over bars."""
    ex = Exchange(partial_fill_rate=0.9)
    yield ex
    ex.close()


def test_fills_before_and_after_replaces_count_against_one_order(
    tmp_path: Path, partial_exchange: Exchange, credentials: tuple[str, str]
) -> None:
    session = LiveSession.create(_spec("Reprice", alpaca_options(partial_exchange)), tmp_path)
    play_when_connected(partial_exchange, 25.0)
    assert run_session(session) == Ending.FINISHED, session.reason
    events = read_recording(session.run_dir).events
    modified = inputs_of(events, Kind.ORDER_MODIFIED)
    assert len(modified) == 2
    assert len(inputs_of(events, Kind.ORDER_REJECTED)) == 0
    fills = node_fills(events)
    assert set(fills["order_id"].tolist()) == {int(modified["order_id"][0])}
    # Fills of the first leg before the first replace, and of the last leg after the second.
    assert (fills["seq"] < modified["seq"][0]).sum() >= 1
    assert (fills["seq"] > modified["seq"][1]).sum() >= 1
    # ORDER_MODIFIED carries the new price, what stays open and the modify command's seq.
    commands = events[events["kind"] == Kind.ORDER_MODIFY]
    assert modified["aux"].tolist() == commands["seq"].tolist()
    assert modified["price"].tolist() == commands["price"].tolist()
    assert modified["qty"].tolist() == commands["qty"].tolist()
    venue = venue_agrees(events, partial_exchange)
    assert len(venue) == 3
    legs = sorted(venue, key=lambda o: leg_of(o["client_order_id"])[1] or 0)
    assert [o["status"] for o in legs[:2]] == ["replaced", "replaced"]
    assert legs[1]["qty"] == int(commands["qty"][0])
    assert legs[2]["limit_price"] == int(commands["price"][1])
    assert legs[0]["filled_qty"] > 0
    assert legs[2]["filled_qty"] > 0
    assert replay(session.run_dir).identical


def _faults_once_resting(ex: Exchange, faults: dict[str, Any]) -> threading.Thread:
    """Switches ``faults`` on once the venue holds the strategy's resting order: the next
    order request is the replace."""

    def wait() -> None:
        for _ in range(1000):
            if any(o["status"] == "new" for o in ex.orders()):
                ex.set_faults(faults)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("faults", "records"),
    [
        ({"http_status": 503, "http_count": 1}, {LiveCode.AMBIGUOUS: 1}),
        ({"accept_then_504": 1}, {LiveCode.AMBIGUOUS: 1, LiveCode.RESOLVED: 1}),
        ({"ack_delay_ms": 700.0}, {LiveCode.AMBIGUOUS: 1, LiveCode.RESOLVED: 1}),
    ],
    ids=["503-before", "504-after-accept", "timeout"],
)
def test_an_ambiguous_replace_is_resolved_by_asking_the_venue(
    tmp_path: Path,
    exchange: Exchange,
    credentials: tuple[str, str],
    faults: dict[str, Any],
    records: dict[LiveCode, int],
) -> None:
    options = alpaca_options(exchange)
    options.update(inflight_check=30.0, timeout=0.5)  # no lookup but the replace's own
    session = LiveSession.create(_spec("Modify", options, at=8), tmp_path)
    _faults_once_resting(exchange, faults)
    play_when_connected(exchange, 45.0)
    assert run_session(session) == Ending.FINISHED, session.reason
    exchange.set_faults({"ack_delay_ms": 0.0})
    events = read_recording(session.run_dir).events
    for code, at_least in records.items():
        assert len(live_records(events, code)) >= at_least, code
    modified = inputs_of(events, Kind.ORDER_MODIFIED)
    assert len(modified) == 1
    assert int(modified["qty"][0]) == 7 * SCALE
    assert len(inputs_of(events, Kind.ORDER_REJECTED)) == 0
    venue = venue_agrees(events, exchange)
    # One replacement, not two: the retried or resolved replace made one order.
    assert sorted(o["status"] for o in venue) == ["canceled", "replaced"]
    (new,) = (o for o in venue if o["replaces"])
    assert new["qty"] == 7 * SCALE
    assert new["limit_price"] == int(modified["price"][0])
    assert replay(session.run_dir).identical


def test_a_refused_replace_leaves_the_order_open(
    tmp_path: Path, exchange: Exchange, credentials: tuple[str, str]
) -> None:
    """More than the account can buy: the venue answers 403; the node hears ORDER_REJECTED
    for the modify, the order stays open (canceled at the stop) and nothing else changes."""
    session = LiveSession.create(
        _spec("Modify", alpaca_options(exchange), to_qty=10_000_000), tmp_path
    )
    play_when_connected(exchange, 45.0)
    assert run_session(session) == Ending.FINISHED, session.reason
    events = read_recording(session.run_dir).events
    assert len(inputs_of(events, Kind.ORDER_MODIFIED)) == 0
    (refused,) = inputs_of(events, Kind.ORDER_REJECTED)
    modify = events[events["kind"] == Kind.ORDER_MODIFY]
    assert refused["side"] == 0
    assert refused["aux"] == modify["seq"][0]
    assert len(inputs_of(events, Kind.ORDER_CANCELED)) == 1  # by the stop: it was still open
    rec = read_recording(session.run_dir)
    reason = rec.payloads[int(np.flatnonzero(events["seq"] == refused["seq"])[0])]
    assert reason is not None
    assert b"insufficient buying power" in bytes(reason)
    (order,) = venue_agrees(events, exchange)
    assert order["status"] == "canceled"
    assert order["qty"] == 5 * SCALE
    assert replay(session.run_dir).identical


def _session_child(run_root: str, options: dict[str, Any]) -> None:
    """A forked child: one session, until the test kills it."""
    os.environ["APCA_API_KEY_ID"], os.environ["APCA_API_SECRET_KEY"] = KEY, SECRET
    session = LiveSession.create(_spec("Modify", options, duration=2.0, at=4), run_root)
    run_session(session)
    os._exit(0)


def _wait_for(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.mark.parametrize("applied", [True, False], ids=["replace-applied", "replace-lost"])
def test_resume_after_a_crash_mid_replace(
    tmp_path: Path, exchange: Exchange, credentials: tuple[str, str], applied: bool
) -> None:
    """The session is killed while its replace is unanswered: the venue holds it back and
    then applies it, or refuses it (5xx) and every lookup too. The resumed session folds the
    modify from its log, asks the venue for the replacement and reports ORDER_MODIFIED or,
    not there, ORDER_REJECTED for the modify: one answer, one replacement at most."""
    options = alpaca_options(exchange)
    options.update(inflight_check=30.0, timeout=5.0)
    faults = {"ack_delay_ms": 800.0} if applied else {"http_status": 503, "http_count": 10_000}
    child = multiprocessing.get_context("fork").Process(
        target=_session_child, args=(str(tmp_path), options)
    )
    child.start()
    try:
        _wait_for(exchange.data_clients)
        exchange.play(20.0)
        _wait_for(lambda: any(o["status"] == "new" for o in exchange.orders()))
        exchange.set_faults(faults)
        time.sleep(0.4)  # bar 4 (0.15 s after bar 1) sends the replace; it waits or fails
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(timeout=10)
    if applied:
        _wait_for(lambda: any(o["status"] == "replaced" for o in exchange.orders()))
    exchange.set_faults({"ack_delay_ms": 0.0, "http_status": 0, "http_count": 0})
    (run,) = tmp_path.glob("run=*")
    before = read_recording(run).events
    (modify,) = before[before["kind"] == Kind.ORDER_MODIFY]
    assert len(inputs_of(before, Kind.ORDER_MODIFIED)) == 0
    assert len(inputs_of(before, Kind.ORDER_REJECTED)) == 0
    session = LiveSession.resume(run)
    waiting = session.tracker.by_order[int(modify["order_id"])].replacing
    assert waiting is not None
    assert waiting.seq == modify["seq"]
    assert run_session(session) == Ending.FINISHED, session.reason
    events = read_recording(run).events
    modified = inputs_of(events, Kind.ORDER_MODIFIED)
    refused = inputs_of(events, Kind.ORDER_REJECTED)
    assert len(modified) == (1 if applied else 0)
    assert len(refused) == (0 if applied else 1)
    if not applied:
        assert refused["side"][0] == 0
    venue = venue_agrees(events, exchange)
    assert len(venue) == (2 if applied else 1)
    assert all(o["status"] in ("replaced", "canceled") for o in venue)
    assert replay(run).identical
