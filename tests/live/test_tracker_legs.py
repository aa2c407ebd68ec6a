"""The order tracker's replaces on their own: an order's legs (its first venue order and
those that replaced it), each leg's fills deduplicated by its own cumulative quantity and
all counted against the one engine order, and the same state folded from a log."""

from __future__ import annotations

import dataclasses

import numpy as np

from admf.events import Flag, Kind, empty_events
from admf.live.codes import LiveCode
from admf.live.inbox import Inbox
from admf.live.outbox import Command, client_order_id, client_prefix
from admf.live.tracker import (
    LEG_MAX,
    OrderTracker,
    leg_of_key,
    replacement_id,
    tracked_order_id,
)

from .conftest import drain_inbox

U = 10**9
PREFIX = client_prefix("run-legs")


def _command(kind: Kind, seq: int, qty: int, price: int, order_id: int = 3) -> Command:
    return Command(
        seq=seq,
        kind=int(kind),
        order_id=order_id,
        client_order_id=client_order_id(PREFIX, order_id),
        instrument=1,
        side=1 if kind == Kind.ORDER_SUBMIT else 0,
        qty=qty,
        price=price,
        value=0,
        market=False,
        ioc=False,
        fok=False,
    )


def _as_outputs(commands: list[Command]) -> np.ndarray:
    """The commands as the log holds them: outputs with their seqs."""
    rows = empty_events(len(commands))
    for i, c in enumerate(commands):
        rows[i]["seq"], rows[i]["kind"], rows[i]["order_id"] = c.seq, c.kind, c.order_id
        rows[i]["instrument"], rows[i]["side"] = c.instrument, c.side
        rows[i]["qty"], rows[i]["price"] = c.qty, c.price
    return rows


def test_replacement_ids_are_derived_and_parsed() -> None:
    first = client_order_id(PREFIX, 3)
    assert replacement_id(first, 41) == f"{first}-r41"
    assert tracked_order_id(PREFIX, replacement_id(first, 41)) == 3
    assert tracked_order_id(PREFIX, first) == 3
    assert tracked_order_id(client_prefix("another run"), first) is None
    assert len(replacement_id(client_order_id(PREFIX, 10**9), 10**12)) <= 48  # Alpaca's limit


def test_the_legs_of_a_replaced_order() -> None:
    inbox = Inbox(64)
    tracker = OrderTracker(PREFIX, inbox)
    order = tracker.add(_command(Kind.ORDER_SUBMIT, 5, 10 * U, 100 * U))
    first = order.client_id
    tracker.ack(order, "venue-a")
    assert tracker.fill(order, "e1", 100 * U, 4 * U, cumulative=4 * U)
    # Modify: 3 still open at 90. The replacement is known by its id before the answer.
    replacement = tracker.replace(order, _command(Kind.ORDER_MODIFY, 9, 3 * U, 90 * U))
    assert replacement.client_id == replacement_id(first, 9)
    assert tracker.by_client[replacement.client_id] is order
    leg = tracker.replaced(order, "venue-b")
    assert leg is not None
    assert order.client_id == replacement.client_id
    assert order.venue_id == "venue-b"
    assert order.qty == 7 * U  # 4 filled before the replace + 3 open
    assert tracker.replaced(order, "venue-b") is None  # answered once
    # A late fill of the first leg (its cumulative 5 > its 4) and the new leg's own fills,
    # whose cumulative starts again at 0.
    assert tracker.fill(order, "e2", 100 * U, 1 * U, cumulative=5 * U, client_id=first)
    assert tracker.fill(order, "e3", 90 * U, 2 * U, cumulative=2 * U)
    assert not tracker.fill(order, "e3", 90 * U, 2 * U, cumulative=2 * U)  # the same again
    assert not tracker.fill(order, "e4", 90 * U, 2 * U, cumulative=4 * U)  # 2 + 2 > 3
    assert tracker.fill(order, "e5", 90 * U, 1 * U, cumulative=3 * U)
    assert order.done
    assert order.filled == 8 * U
    assert tracker.positions == {1: 8 * U}
    events, _ = drain_inbox(inbox)
    (modified,) = events[events["kind"] == Kind.ORDER_MODIFIED]
    assert (modified["order_id"], modified["aux"]) == (3, 9)
    assert (modified["price"], modified["qty"]) == (90 * U, 3 * U)
    fills = events[events["kind"] == Kind.FILL]
    assert set(fills["order_id"].tolist()) == {3}
    assert fills["qty"].tolist() == [4 * U, 1 * U, 2 * U, 1 * U]
    records = events[events["kind"] == Kind.CUSTOM]["order_id"].tolist()
    assert records.count(LiveCode.DUPLICATE_FILL) == 1
    assert records.count(LiveCode.OVERFILL) == 1


def test_a_refused_replace_leaves_the_order_as_it_was() -> None:
    inbox = Inbox(64)
    tracker = OrderTracker(PREFIX, inbox)
    order = tracker.add(_command(Kind.ORDER_SUBMIT, 5, 10 * U, 100 * U))
    tracker.replace(order, _command(Kind.ORDER_MODIFY, 9, 30 * U, 90 * U))
    tracker.refuse_replacement(order, "403: insufficient buying power")
    assert order.replacing is None
    assert not order.done
    assert (order.qty, order.price, len(order.legs)) == (10 * U, 100 * U, 1)
    events, payloads = drain_inbox(inbox)
    (refused,) = events[events["kind"] == Kind.ORDER_REJECTED]
    assert (refused["side"], refused["aux"], refused["qty"]) == (0, 9, 30 * U)
    assert payloads[-1] == "403: insufficient buying power"


def test_legs_and_an_unanswered_replace_are_folded_from_the_log() -> None:
    submit = _command(Kind.ORDER_SUBMIT, 5, 10 * U, 100 * U)
    first_modify = _command(Kind.ORDER_MODIFY, 9, 3 * U, 90 * U)
    inbox = Inbox(64)
    live = OrderTracker(PREFIX, inbox)
    order = live.add(submit)
    live.ack(order, "venue-a")
    live.fill(order, "e1", 100 * U, 4 * U, cumulative=4 * U)
    live.replace(order, first_modify)
    live.replaced(order, "venue-b")
    live.fill(order, "e2", 90 * U, 1 * U, cumulative=1 * U)
    inputs, _ = drain_inbox(inbox)
    inputs["flags"] |= np.uint16(Flag.INPUT)
    inputs["seq"] = np.arange(20, 20 + len(inputs))
    # Two more modifies left the node after those inputs; neither was answered (a crash).
    late = [
        dataclasses.replace(first_modify, seq=40, price=95 * U),
        dataclasses.replace(first_modify, seq=41, price=96 * U),
    ]
    log = np.concatenate([_as_outputs([submit, first_modify]), inputs, _as_outputs(late)])
    log = log[np.argsort(log["seq"], kind="stable")]
    folded_inbox = Inbox(64)
    folded = OrderTracker.from_log(PREFIX, folded_inbox, log)
    again = folded.by_order[3]
    assert [leg.client_id for leg in again.legs] == [
        order.legs[0].client_id,
        order.legs[1].client_id,
    ]
    assert [leg.filled for leg in again.legs] == [4 * U, 1 * U]
    assert again.qty == order.qty == 7 * U
    assert folded.executions == live.executions
    # The first unanswered modify may be at the venue: reconciliation asks for it; the one
    # behind it never left (one replace of an order at a time) and is reported refused.
    assert again.replacing is not None
    assert again.replacing.seq == 40
    assert folded.by_client[replacement_id(order.legs[0].client_id, 40)] is again
    events, payloads = drain_inbox(folded_inbox)
    (refused,) = events[events["kind"] == Kind.ORDER_REJECTED]
    assert (refused["aux"], refused["side"]) == (41, 0)
    assert payloads[0] == "not sent: the session stopped"


def test_a_late_fill_of_a_replaced_leg_is_folded_against_that_leg() -> None:
    """The crash window: the venue filled the first leg before it replaced it, but the fill
    was heard after ``ORDER_MODIFIED``. The fill's key names its leg, so the resumed tracker
    counts it against the first leg, and the venue's view of that leg (what reconciliation
    reads) is not counted a second time."""
    submit = _command(Kind.ORDER_SUBMIT, 5, 10 * U, 100 * U)
    modify = _command(Kind.ORDER_MODIFY, 9, 3 * U, 90 * U)
    inbox = Inbox(64)
    live = OrderTracker(PREFIX, inbox)
    order = live.add(submit)
    first = order.client_id
    live.ack(order, "venue-a")
    live.fill(order, "e1", 100 * U, 4 * U, cumulative=4 * U)
    live.replace(order, modify)
    live.replaced(order, "venue-b")
    live.fill(order, "e2", 100 * U, 1 * U, cumulative=5 * U, client_id=first)  # late, old leg
    live.fill(order, "e3", 90 * U, 2 * U, cumulative=2 * U)
    inputs, _ = drain_inbox(inbox)
    inputs["flags"] |= np.uint16(Flag.INPUT)
    inputs["seq"] = np.arange(20, 20 + len(inputs))
    fills = inputs[inputs["kind"] == Kind.FILL]
    assert [leg_of_key(int(k)) for k in fills["payload"]] == [0, 0, 1]
    log = np.concatenate([_as_outputs([submit, modify]), inputs])
    log = log[np.argsort(log["seq"], kind="stable")]
    folded = OrderTracker.from_log(PREFIX, Inbox(64), log)
    again = folded.by_order[3]
    assert [leg.filled for leg in again.legs] == [5 * U, 2 * U]
    assert not again.done  # the leg in force has 1 of its 3 open
    assert not again.legs[0].settled  # reconciliation asks the venue for it
    assert folded.unsettled_legs() == [(again, again.legs[0])]
    # Reconciliation reads the first leg at the venue: 5 filled, as the log says.
    assert not folded.fill(
        again, "reconciled:x:5", 100 * U, 1 * U, cumulative=5 * U, client_id=first
    )
    assert folded.positions == {1: 7 * U}
    # A log written before fill keys named their leg: each fill counts against the leg in
    # force when it was applied (as it was then).
    old = log.copy()
    old["payload"] = np.where(old["kind"] == Kind.FILL, old["payload"] | LEG_MAX, old["payload"])
    legacy = OrderTracker.from_log(PREFIX, Inbox(64), old, leg_keys=False)
    assert [leg.filled for leg in legacy.by_order[3].legs] == [4 * U, 3 * U]
