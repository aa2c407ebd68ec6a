"""A replaced leg fills after its replace left: the venue fills the old venue order while the
replace request waits (a delayed acknowledgement), and the news of it is lost with the
order-update connection, twice: the fill's own update, then the venue's ``replaced`` update.
The reconciliation after the first reconnect cannot ask the venue (5xx); after the second,
the old leg is no longer the one in force, and it is asked for all the same (by the
reconciliation, or the in-flight check if it comes first): the fill is recovered once,
counted against the leg it is of, and the node's fills equal the venue's, leg by leg."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from admf.events import Kind
from admf.live.codes import LiveCode
from admf.live.control import send_command
from admf.live.session import Ending, LiveSession, LiveSpec, run_session
from admf.live.tracker import leg_of_key
from admf.replay import read_recording, replay

from .conftest import (
    KEY,
    Exchange,
    alpaca_options,
    inputs_of,
    live_records,
    node_fills,
    venue_agrees,
)


def _wait(check: Callable[[], Any], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def partial_exchange() -> Iterator[Exchange]:
    """Fills on bars are partial nine times in ten (seeded): an order fills over bars."""
    ex = Exchange(partial_fill_rate=0.9)
    yield ex
    ex.close()


def _step(ex: Exchange) -> None:
    server = ex.server
    assert server is not None
    ex.call(lambda: server.step(1))


def _listening(ex: Exchange) -> int:
    server = ex.server
    assert server is not None
    return ex.call(lambda: sum(1 for c in server.listeners.get(KEY, []) if not c.closed))


def _http_faults_left(ex: Exchange) -> int:
    server = ex.server
    assert server is not None
    return ex.call(lambda: server.faults.http_count)


def test_a_replaced_legs_fill_lost_with_the_stream_is_recovered_by_reconciliation(
    tmp_path: Path, partial_exchange: Exchange, credentials: tuple[str, str]
) -> None:
    ex = partial_exchange
    options = {**alpaca_options(ex), "time_in_force": "gtc", "timeout": 3.0}
    spec = LiveSpec(
        strategy="tests.live.strategies:Modify",
        symbols=("ORCL",),
        data_adapter="alpaca",
        exec_adapter="alpaca",
        # A buy above the market (it fills, a part on each bar), moved on bar 3.
        params={"qty": 20_000, "below": 1.5, "at": 3, "to_below": 1.5, "to_qty": 500},
        options=options,
        duration=20.0,  # a safety net: the test stops it
    )
    session = LiveSession.create(spec, tmp_path)
    result: list[Ending] = []
    thread = threading.Thread(target=lambda: result.append(run_session(session)))
    thread.start()
    try:
        _wait(lambda: ex.data_clients() and _listening(ex))
        _step(ex)  # bar 1: the buy
        _wait(lambda: session.tracker.by_order and ex.orders())
        (order,) = session.tracker.by_order.values()
        _step(ex)  # bar 2: a first part filled, heard
        _wait(lambda: order.legs[0].filled > 0)
        ex.set_faults({"ack_delay_ms": 1500.0})
        _step(ex)  # bar 3: another part, and the replace, held back by the venue
        _wait(lambda: order.replacing is not None)
        time.sleep(0.2)  # the request is at the venue, waiting
        heard = order.legs[0].filled
        # Bar 4 fills the old leg again: its update is lost with the connection, and the
        # reconciliation after the reconnect gets 503 for the order and the positions.
        reconnects = session.execution.reconnects  # type: ignore[union-attr]
        ex.set_faults({"drop_connection": 1, "http_status": 503, "http_count": 2})
        _step(ex)
        _wait(lambda: session.execution.reconnects > reconnects)  # type: ignore[union-attr]
        _wait(lambda: _listening(ex) and not _http_faults_left(ex))
        assert order.legs[0].filled == heard  # the fill is not known yet
        assert order.replacing is not None  # the replace still waits at the venue
        # The venue's "replaced" update is lost too; the replace's answer puts the new leg
        # in force; the reconciliation after the reconnect finds the old leg's fill.
        ex.set_faults({"drop_connection": 1})
        _wait(lambda: len(order.legs) == 2 and order.legs[0].settled)
        ex.set_faults({"ack_delay_ms": 0.0})
        for _ in range(3):
            _step(ex)  # the new leg fills
        _wait(lambda: order.legs[1].filled > 0)
        send_command(session.run_dir, "stop")
    finally:
        thread.join(timeout=30)
    assert result == [Ending.FINISHED], session.reason
    events = read_recording(session.run_dir).events
    (modified,) = inputs_of(events, Kind.ORDER_MODIFIED)
    fills = node_fills(events)
    legs = [leg_of_key(int(k)) for k in fills["payload"]]
    # The old leg's bar-4 fill, recovered after ORDER_MODIFIED and counted against it.
    late = [s for s, leg in zip(fills["seq"].tolist(), legs, strict=True) if leg == 0]
    assert max(late) > int(modified["seq"])
    assert 1 in legs
    assert len(live_records(events, LiveCode.RECONCILED)) >= 3
    venue = venue_agrees(events, ex)
    assert sorted(o["status"] for o in venue)[-1] == "replaced"
    assert replay(session.run_dir).identical
    # Resumed, the session folds each fill against its leg and asks the venue for the old
    # leg again (its settlement is not in the log): the same quantity, nothing counted twice.
    resumed = LiveSession.resume(session.run_dir)
    again = resumed.tracker.by_order[order.order_id]
    assert [leg.filled for leg in again.legs] == [leg.filled for leg in order.legs]
    assert [leg.settled for leg in again.legs] == [False, False]
    result.clear()
    thread = threading.Thread(target=lambda: result.append(run_session(resumed)))
    thread.start()
    try:
        _wait(lambda: again.legs[0].settled)
        send_command(resumed.run_dir, "stop")
    finally:
        thread.join(timeout=30)
    assert result == [Ending.FINISHED], resumed.reason
    after = read_recording(session.run_dir).events
    assert len(node_fills(after)) == len(fills)
    venue_agrees(after, ex)
    assert replay(session.run_dir).identical
