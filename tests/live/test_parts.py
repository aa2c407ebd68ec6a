"""The live node's parts on their own: the order tracker (fills once, overfills refused),
the inbox (payloads travel with their events; market data conflated, never orders), the
clock, and the command line's errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from admf.cli import main
from admf.clock import WallClock
from admf.events import Flag, Kind
from admf.live.alpaca import parse_time
from admf.live.codes import LiveCode
from admf.live.inbox import Inbox
from admf.live.outbox import Command, client_order_id, client_prefix, order_id_of
from admf.live.tracker import OrderTracker

from .conftest import ORCL, drain_inbox


def _command(order_id: int, qty: int) -> Command:
    prefix = client_prefix("run-1")
    return Command(
        seq=order_id,
        kind=int(Kind.ORDER_SUBMIT),
        order_id=order_id,
        client_order_id=client_order_id(prefix, order_id),
        instrument=1,
        side=1,
        qty=qty,
        price=0,
        value=0,
        market=True,
        ioc=False,
        fok=False,
    )


def test_fills_are_counted_once_and_overfills_refused() -> None:
    inbox = Inbox(64)
    tracker = OrderTracker(client_prefix("run-1"), inbox)
    order = tracker.add(_command(7, 10 * 10**9))
    assert tracker.fill(order, "e1", 5 * 10**9, 4 * 10**9, cumulative=4 * 10**9)
    assert not tracker.fill(order, "e1", 5 * 10**9, 4 * 10**9)  # the same execution again
    # A fill recovered from the order's filled quantity, then the stream's late copy of it.
    assert tracker.fill(order, "reconciled:x:8", 5 * 10**9, 4 * 10**9, cumulative=8 * 10**9)
    assert not tracker.fill(order, "e2", 5 * 10**9, 4 * 10**9, cumulative=8 * 10**9)
    assert not tracker.fill(order, "e3", 5 * 10**9, 3 * 10**9)  # 8 + 3 > 10
    assert tracker.fill(order, "e4", 5 * 10**9, 2 * 10**9, cumulative=10 * 10**9)
    assert order.done
    events, payloads = drain_inbox(inbox)
    kinds = events["kind"].tolist()
    assert kinds.count(Kind.ORDER_ACCEPTED) == 1  # before the first fill, once
    assert kinds.index(Kind.ORDER_ACCEPTED) < kinds.index(Kind.FILL)
    fills = events[events["kind"] == Kind.FILL]
    assert fills["qty"].tolist() == [4 * 10**9, 4 * 10**9, 2 * 10**9]
    assert len(set(fills["payload"].tolist())) == 3
    records = events[events["kind"] == Kind.CUSTOM]["order_id"].tolist()
    assert records.count(LiveCode.DUPLICATE_FILL) == 2
    assert records.count(LiveCode.OVERFILL) == 1
    overfill = payloads[int(np.flatnonzero(events["order_id"] == LiveCode.OVERFILL)[0])]
    assert isinstance(overfill, dict)
    assert overfill["order_qty"] == 10 * 10**9
    # A resumed session's tracker knows the fills already in the log.
    logged = events.copy()
    logged["flags"] |= np.uint16(Flag.INPUT)
    submit = np.zeros(1, dtype=logged.dtype)
    submit["kind"], submit["order_id"], submit["qty"], submit["instrument"] = 20, 7, 10**10, 1
    submit["side"] = 1
    again = OrderTracker.from_log(
        client_prefix("run-1"), Inbox(8), np.concatenate([submit, logged])
    )
    assert again.by_order[7].filled == 10 * 10**9
    assert again.by_order[7].done
    assert again.executions == set(fills["payload"].tolist())


def test_market_data_is_conflated_when_full_and_counted() -> None:
    inbox = Inbox(4)
    from admf import Event

    for i in range(10):
        inbox.offer_market(Event(Kind.QUOTE, i + 1, instrument=1, price=i))
    events, _ = drain_inbox(inbox)
    assert len(events) == 4  # the queue held four; the rest waits, newest only
    inbox.offer_market(Event(Kind.QUOTE, 20, instrument=1, price=99))
    events, _ = drain_inbox(inbox)
    # The newest waiting quote first, then the count of the replaced ones, then the new one.
    assert events["kind"].tolist() == [Kind.QUOTE, Kind.CUSTOM, Kind.QUOTE]
    assert events["price"].tolist()[::2] == [9, 99]
    assert events["order_id"][1] == LiveCode.CONFLATED
    assert events["qty"][1] == inbox.conflated == 5


def test_payloads_travel_with_their_events() -> None:
    inbox = Inbox(16)
    inbox.record(LiveCode.PAUSE, {"control": "pause"})
    inbox.record(LiveCode.RESUME)
    inbox.record(LiveCode.RECONCILED, {"orders": 3})
    events, payloads = drain_inbox(inbox)
    assert payloads == [{"control": "pause"}, None, {"orders": 3}]
    assert (events["flags"] & Flag.HAS_PAYLOAD).astype(bool).tolist() == [True, False, True]


def test_the_kernel_takes_inputs_straight_from_the_queue_with_their_payloads() -> None:
    from collections import deque

    from admf import Event
    from admf._core import KernelCore

    inbox = Inbox(16)
    inbox.record(LiveCode.PAUSE, {"control": "pause"})
    inbox.offer_market(Event(Kind.QUOTE, 5, instrument=1, price=7))
    inbox.record(LiveCode.RECONCILED, {"orders": 3})
    core = KernelCore([], 1, 64)
    payloads: deque[object] = deque()
    assert inbox.fill(core, payloads)
    assert core.remaining == 3
    # One payload per flagged input, in the order the inputs are sequenced.
    assert list(payloads) == [{"control": "pause"}, {"orders": 3}]
    inbox.close()
    assert not inbox.fill(core, payloads)  # closed and drained: the source has ended


def test_clock_and_ids() -> None:
    readings = iter([5, 3, 9])
    clock = WallClock(lambda: next(readings))
    assert [clock.now_ns(), clock.now_ns(), clock.now_ns()] == [5, 5, 9]
    prefix = client_prefix("20261128T000000Z-abcdef01")
    assert len(client_order_id(prefix, 10**12)) <= 48
    assert order_id_of(prefix, client_order_id(prefix, 42)) == 42
    assert order_id_of(prefix, "someone-else-42") is None
    assert parse_time("2022-04-19T13:45:05.024916716-04:00") == 1650390305024916716


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data-adapter", "replay"], "--strategy, --log required"),
        (["--strategy", "sma-cross", "--data-adapter", "nope", "--symbol", "X"], "no adapter"),
        (
            ["--strategy", "sma-cross", "--data-adapter", "replay", "--data", ORCL,
             "--param", "fast=x"],
            "parameter fast='x'",
        ),
        (
            ["--strategy", "sma-cross", "--data-adapter", "alpaca", "--symbol", "X"],
            "no credentials",
        ),
        (
            ["--strategy", "sma-cross", "--data-adapter", "replay", "--data", ORCL,
             "--adapter-option", "api_secret=x"],
            "looks like a credential",
        ),
        (
            ["--strategy", "sma-cross", "--data-adapter", "alpaca", "--exec-adapter",
             "alpaca", "--symbol", "X", "--fee-rate", "0.001"],
            "fee_rate: settings of the simulated venue",
        ),
    ],
)  # fmt: skip
def test_bad_settings_fail_before_anything_starts(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    needs_log = "--strategy" in argv
    code = main(["live", *argv, *(["--log", str(tmp_path / "runs")] if needs_log else [])])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # no log of a session that never started
