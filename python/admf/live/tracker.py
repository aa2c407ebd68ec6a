"""The execution adapter's view of its orders: what was sent, acknowledged, filled, finished.

Every venue answer passes through here before it becomes an input event, so that:

- an acknowledgement is reported once, even if the venue repeats it, and before any fill;
- a fill is counted once: by its execution id (kept as a 63-bit hash in the fill's ``payload``
  slot, so a resumed session knows the ones already in the log), and by the order's
  cumulative filled quantity when the venue gives it (a fill recovered by reconciliation and
  the same execution arriving late over the stream are one fill);
- a fill beyond the order's quantity is refused and recorded (``OVERFILL``);
- a finished order stays finished.

`OrderTracker.from_log` rebuilds it from a session's log when the session resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from admf._core import Event
from admf.events import (
    F_OWN,
    K_FILL,
    K_ORDER_ACCEPTED,
    K_ORDER_CANCELED,
    K_ORDER_EXPIRED,
    K_ORDER_REJECTED,
    K_ORDER_SUBMIT,
    EventArray,
    Flag,
)
from admf.live.codes import LiveCode
from admf.live.inbox import Inbox
from admf.live.outbox import Command, client_order_id


def execution_key(execution_id: str) -> int:
    """A venue's execution id as the 63-bit number kept in the fill's ``payload`` slot."""
    digest = hashlib.blake2b(execution_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


@dataclasses.dataclass
class TrackedOrder:
    order_id: int
    client_id: str
    instrument: int
    side: int
    qty: int
    """0 for an order sized by value at the venue (no overfill check then)."""
    price: int = 0
    venue_id: str | None = None
    filled: int = 0
    acked: bool = False
    done: bool = False
    ambiguous: bool = False

    def report(self, kind: int, ts: int) -> Event:
        return Event(
            kind,
            ts,
            instrument=self.instrument,
            order_id=self.order_id,
            side=self.side,
            price=self.price,
            qty=self.qty,
        )


class OrderTracker:
    """See the module docstring."""

    def __init__(self, prefix: str, inbox: Inbox) -> None:
        self.prefix = prefix
        self.inbox = inbox
        self.by_client: dict[str, TrackedOrder] = {}
        self.by_order: dict[int, TrackedOrder] = {}
        self.executions: set[int] = set()
        self.positions: dict[int, int] = {}
        """Signed position per instrument from the fills counted here."""
        self.duplicates = 0
        self.overfills = 0

    # -- commands -------------------------------------------------------------------------

    def add(self, command: Command) -> TrackedOrder:
        order = TrackedOrder(
            command.order_id,
            command.client_order_id,
            command.instrument,
            command.side,
            command.qty,
            command.price,
        )
        self.by_client[order.client_id] = order
        self.by_order[order.order_id] = order
        return order

    def open_orders(self) -> list[TrackedOrder]:
        return [o for o in self.by_order.values() if not o.done]

    # -- venue answers --------------------------------------------------------------------

    def ack(self, order: TrackedOrder, venue_id: str | None) -> None:
        if venue_id:
            order.venue_id = venue_id
        if order.acked or order.done:
            return
        order.acked = True
        self.inbox.push(order.report(K_ORDER_ACCEPTED, self.inbox.now()))

    def fill(
        self,
        order: TrackedOrder,
        execution_id: str,
        price: int,
        qty: int,
        cumulative: int | None = None,
        fee: int = 0,
    ) -> bool:
        """Reports a fill unless it is a duplicate or an overfill (recorded instead); True if
        reported."""
        key = execution_key(execution_id)
        if key in self.executions or (cumulative is not None and cumulative <= order.filled):
            self.duplicates += 1
            self.inbox.record(
                LiveCode.DUPLICATE_FILL,
                {"client_order_id": order.client_id, "execution_id": execution_id},
            )
            return False
        if order.qty and order.filled + qty > order.qty:
            self.overfills += 1
            self.inbox.record(
                LiveCode.OVERFILL,
                {
                    "client_order_id": order.client_id,
                    "execution_id": execution_id,
                    "filled": order.filled,
                    "qty": qty,
                    "order_qty": order.qty,
                },
            )
            return False
        self.ack(order, None)
        self.executions.add(key)
        order.filled += qty
        signed = qty if order.side == 1 else -qty
        self.positions[order.instrument] = self.positions.get(order.instrument, 0) + signed
        if order.qty and order.filled >= order.qty:
            order.done = True
        self.inbox.push(
            Event(
                K_FILL,
                self.inbox.now(),
                instrument=order.instrument,
                order_id=order.order_id,
                side=order.side,
                price=price,
                qty=qty,
                aux=fee,
                payload=key,
                flags=F_OWN,
            )
        )
        return True

    def finish(self, order: TrackedOrder, kind: int, reason: str | None = None) -> None:
        if order.done:
            return
        order.done = True
        if kind == K_ORDER_REJECTED:
            self.inbox.push(order.report(kind, self.inbox.now()), reason or "rejected by the venue")
        else:
            self.inbox.push(order.report(kind, self.inbox.now()), reason)

    # -- resume ---------------------------------------------------------------------------

    @classmethod
    def from_log(cls, prefix: str, inbox: Inbox, events: EventArray) -> OrderTracker:
        """The tracker of a session whose log holds ``events``."""
        tracker = cls(prefix, inbox)
        inputs = (events["flags"] & Flag.INPUT) != 0
        for row, is_input in zip(events, inputs.tolist(), strict=True):
            kind = int(row["kind"])
            order_id = int(row["order_id"])
            if kind == K_ORDER_SUBMIT and not is_input:
                order = TrackedOrder(
                    order_id,
                    client_order_id(prefix, order_id),
                    int(row["instrument"]),
                    int(row["side"]),
                    int(row["qty"]),
                    int(row["price"]),
                )
                tracker.by_client[order.client_id] = order
                tracker.by_order[order_id] = order
                continue
            if not is_input and kind in (K_ORDER_ACCEPTED, K_FILL):
                continue
            # Refusals by validation, risk or the gate are outputs; the venue's are inputs.
            tracked = tracker.by_order.get(order_id)
            if tracked is None:
                continue
            if kind == K_ORDER_ACCEPTED:
                tracked.acked = True
            elif kind == K_FILL:
                qty = int(row["qty"])
                tracker.executions.add(int(row["payload"]))
                tracked.acked = True
                tracked.filled += qty
                signed = qty if tracked.side == 1 else -qty
                inst = tracked.instrument
                tracker.positions[inst] = tracker.positions.get(inst, 0) + signed
                if tracked.qty and tracked.filled >= tracked.qty:
                    tracked.done = True
            elif (kind == K_ORDER_REJECTED and int(row["qty"]) == tracked.qty) or kind in (
                K_ORDER_CANCELED,
                K_ORDER_EXPIRED,
            ):
                tracked.done = True
        return tracker

    def summary(self) -> dict[str, Any]:
        return {
            "orders": len(self.by_order),
            "open": len(self.open_orders()),
            "fills": len(self.executions),
            "duplicates": self.duplicates,
            "overfills": self.overfills,
        }
