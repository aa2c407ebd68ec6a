"""Faults injected by the paper exchange while a strategy trades through the ``alpaca``
adapter: for each, the session records it, recovers, and at the end the venue's orders,
fills and position equal the node's (no order or fill lost or doubled)."""

from __future__ import annotations

import collections
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from admf.events import Flag, Kind
from admf.live.codes import LiveCode
from admf.live.session import Ending, LiveSession, LiveSpec, run_session
from admf.replay import read_recording, replay

from .conftest import (
    Exchange,
    alpaca_options,
    drop_data_clients,
    inputs_of,
    leg_of,
    node_fills,
    play_when_connected,
    venue_agrees,
)

FAULTS: dict[str, tuple[dict[str, Any], LiveCode | None]] = {
    "dropped-connection": ({"drop_connection": 2}, LiveCode.RECONCILED),
    "delayed-acks": ({"ack_delay_ms": 150.0}, None),
    "duplicated-acks-and-fills": ({"duplicate_trade_updates": 12}, LiveCode.DUPLICATE_FILL),
    "out-of-order-updates": ({"reorder_trade_updates": 8}, None),
    "429": ({"http_status": 429, "http_count": 3}, LiveCode.AMBIGUOUS),
    "5xx": ({"http_status": 503, "http_count": 3}, LiveCode.AMBIGUOUS),
    "504-after-accept": ({"accept_then_504": 2}, LiveCode.RESOLVED),
    "malformed-frames": ({"malformed_frames": 3}, LiveCode.MALFORMED),
}


def _live_records(events: np.ndarray, code: LiveCode) -> int:
    live = (events["kind"] == Kind.CUSTOM) & ((events["flags"] & Flag.INPUT) != 0)
    return int((live & (events["order_id"] == code)).sum())


def _faults_once_replaced(ex: Exchange, faults: dict[str, Any]) -> None:
    def wait() -> None:
        for _ in range(2000):
            if any(o["status"] == "replaced" for o in ex.orders()):
                ex.set_faults(faults)
                return
            time.sleep(0.005)

    threading.Thread(target=wait, daemon=True).start()


@pytest.mark.parametrize("strategy", ["Flip", "FlipModify"])
@pytest.mark.parametrize("name", list(FAULTS))
def test_the_node_recovers_and_agrees_with_the_venue(
    tmp_path: Path, exchange: Exchange, credentials: tuple[str, str], name: str, strategy: str
) -> None:
    """``FlipModify`` also moves a resting order every third bar: faults hit replaces too."""
    faults, recorded = FAULTS[name]
    options = alpaca_options(exchange)
    options["timeout"] = 0.5
    params: dict[str, Any] = {"every": 3, "qty": 10}
    if strategy == "FlipModify":
        params.update(move_every=3, below=0.9)  # it rests: moved again and again
        options["time_in_force"] = "gtc"  # daily bars: a day order would expire on the next
    spec = LiveSpec(
        strategy=f"tests.live.strategies:{strategy}",
        symbols=("ORCL",),
        data_adapter="alpaca",
        exec_adapter="alpaca",
        params=params,
        options=options,
        duration=2.8,
    )
    session = LiveSession.create(spec, tmp_path)
    if strategy == "FlipModify":
        # Switched on once the venue replaced an order: the faults hit replaces and the
        # updates of replaced and replacing orders too.
        play_when_connected(exchange, 45.0)
        _faults_once_replaced(exchange, faults)
    else:
        play_when_connected(exchange, 45.0, faults)
    assert run_session(session) == Ending.FINISHED, session.reason
    events = read_recording(session.run_dir).events
    if recorded is not None:
        assert _live_records(events, recorded) >= 1, recorded
    if strategy == "FlipModify":
        assert len(inputs_of(events, Kind.ORDER_MODIFIED)) >= 3
    # The venue and the node agree: no order twice, each leg's fills counted once.
    venue = venue_agrees(events, exchange)
    assert len(venue) >= 5
    # Every order the node let out is at the venue, once, unless the venue refused it (a
    # 403 creates no order); an order refused by validation, risk or the gate never left.
    submits = events[events["kind"] == Kind.ORDER_SUBMIT]
    rejected = events[events["kind"] == Kind.ORDER_REJECTED]
    rejected = rejected[rejected["side"] != 0]  # not a refused modify
    inputs = (rejected["flags"] & Flag.INPUT) != 0
    sent = set(submits["order_id"].tolist()) - set(rejected[~inputs]["order_id"].tolist())
    at_venue = {leg_of(o["client_order_id"])[0] for o in venue}
    assert at_venue <= sent
    assert sent - at_venue <= set(rejected[inputs]["order_id"].tolist())
    assert session.node.portfolio.qty_fx(1) == exchange.position()
    assert replay(session.run_dir).identical


def test_polling_when_the_order_stream_cannot_connect(
    tmp_path: Path, exchange: Exchange, credentials: tuple[str, str]
) -> None:
    """trade_updates unreachable: after ``stream_failures`` tries the adapter polls the
    orders (recorded), reconciles, and trading goes on with the venue and the node agreeing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    options = alpaca_options(exchange)
    options.update(stream_url=f"ws://127.0.0.1:{closed_port}/stream", stream_failures=2)
    spec = LiveSpec(
        strategy="tests.live.strategies:Flip",
        symbols=("ORCL",),
        data_adapter="alpaca",
        exec_adapter="alpaca",
        params={"every": 3, "qty": 10},
        options=options,
        duration=2.5,
    )
    session = LiveSession.create(spec, tmp_path)
    play_when_connected(exchange, 30.0)
    assert run_session(session) == Ending.FINISHED, session.reason
    events = read_recording(session.run_dir).events
    assert _live_records(events, LiveCode.POLLING) == 1
    venue = exchange.orders()
    assert len(venue) >= 3
    fills = node_fills(events)
    filled: collections.Counter[int] = collections.Counter()
    for f in fills:
        filled[int(f["order_id"])] += int(f["qty"])
    for order in venue:
        assert filled[int(order["client_order_id"].rsplit("-", 1)[1])] == order["filled_qty"]
    assert session.node.portfolio.qty_fx(1) == exchange.position()
    assert replay(session.run_dir).identical


def test_market_data_reconnects_and_resubscribes(
    tmp_path: Path, exchange: Exchange, credentials: tuple[str, str]
) -> None:
    spec = LiveSpec(
        strategy="tests.live.strategies:Flip",
        symbols=("ORCL",),
        data_adapter="alpaca",
        params={"every": 3, "qty": 10},
        options=alpaca_options(exchange),
        duration=2.0,
    )
    session = LiveSession.create(spec, tmp_path)
    play_when_connected(exchange, 40.0)

    def cut() -> None:
        time.sleep(0.8)
        assert drop_data_clients(exchange) == 1

    cutter = threading.Thread(target=cut)
    cutter.start()
    assert run_session(session) == Ending.FINISHED, session.reason
    cutter.join()
    events = read_recording(session.run_dir).events
    assert _live_records(events, LiveCode.DATA_DISCONNECTED) == 1
    assert _live_records(events, LiveCode.DATA_CONNECTED) == 2
    live = (events["kind"] == Kind.CUSTOM) & ((events["flags"] & Flag.INPUT) != 0)
    back = int(events[live & (events["order_id"] == LiveCode.DATA_CONNECTED)]["seq"][1])
    bars = events[events["kind"] == Kind.BAR]
    assert (bars["seq"] > back).sum() > 5  # bars flow again after the reconnect
    assert replay(session.run_dir).identical


def test_a_slow_node_never_loses_orders_or_fills(
    tmp_path: Path, exchange: Exchange, credentials: tuple[str, str]
) -> None:
    spec = LiveSpec(
        strategy="tests.live.strategies:SlowFlip",
        symbols=("ORCL",),
        data_adapter="alpaca",
        exec_adapter="alpaca",
        params={"every": 2, "qty": 10},
        options=alpaca_options(exchange),
        duration=2.5,
        queue_capacity=8,
    )
    session = LiveSession.create(spec, tmp_path)
    play_when_connected(exchange, 200.0)
    assert run_session(session) == Ending.FINISHED, session.reason
    events = read_recording(session.run_dir).events
    conflated = events[(events["kind"] == Kind.CUSTOM) & (events["order_id"] == LiveCode.CONFLATED)]
    replaced = int(conflated["qty"].max()) if len(conflated) else 0
    bars = int((events["kind"] == Kind.BAR).sum())
    # Every bar the exchange played was applied or counted as replaced by a newer one (how
    # many were replaced depends on the machine's speed; the inbox's own test pins that).
    assert bars + replaced <= 100
    assert bars > 0
    venue = exchange.orders()
    assert venue
    filled: collections.Counter[int] = collections.Counter()
    for f in node_fills(events):
        filled[int(f["order_id"])] += int(f["qty"])
    for order in venue:
        assert filled[int(order["client_order_id"].rsplit("-", 1)[1])] == order["filled_qty"]
    assert session.node.portfolio.qty_fx(1) == exchange.position()
    assert replay(session.run_dir).identical
