"""The execution adapter's view of its orders: what was sent, acknowledged, filled, finished.

Every venue answer passes through here before it becomes an input event, so that:

- an acknowledgement is reported once, even if the venue repeats it, and before any fill;
- a fill is counted once: by its execution id (kept hashed in the fill's ``payload`` slot, so
  a resumed session knows the ones already in the log), and by the order's cumulative filled
  quantity when the venue gives it (a fill recovered by reconciliation and the same execution
  arriving late over the stream are one fill). The slot's low `LEG_BITS` bits name the leg
  the fill is of (`fill_key`), so a resumed session counts a replaced leg's late fill
  against that leg;
- a fill beyond the order's quantity is refused and recorded (``OVERFILL``);
- a finished order stays finished;
- a modify is a replacement at the venue: a new venue order (a *leg*) with a client order id
  of its own, derived from the order's and the modify command's seq (`replacement_id`), so
  a retried or resumed replace cannot create a second one. The engine keeps one order: the
  fills of every leg count against its order id, each leg's cumulative filled quantity
  deduplicating its own fills. The venue's answer is reported as ``ORDER_MODIFIED`` (the new
  price and the quantity still open) or, refused, as an ``ORDER_REJECTED`` of the modify
  (``side`` NONE, the order stays open); both carry the modify command's seq in ``aux``.
  A replaced leg may still fill until the venue replaced it: its filled quantity is final
  once the venue shows it ended (`Leg.settled`); until then reconciliation asks for it too.

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
    K_ORDER_MODIFIED,
    K_ORDER_MODIFY,
    K_ORDER_REJECTED,
    K_ORDER_SUBMIT,
    EventArray,
    Flag,
)
from admf.live.codes import LiveCode
from admf.live.inbox import Inbox
from admf.live.outbox import Command, client_order_id, order_id_of

REPLACEMENT_MARK = "-r"
"""Between an order's client order id and the seq of the modify command that replaced it."""


def replacement_id(client_id: str, seq: int) -> str:
    """The client order id of the venue order that replaces order ``client_id`` by the modify
    command ``seq`` (the same command always gets the same id: a replace sent twice cannot
    make two orders)."""
    return f"{client_id}{REPLACEMENT_MARK}{seq}"


def tracked_order_id(prefix: str, client_id: str) -> int | None:
    """The engine order id in one of this run's client order ids (a replacement's too)."""
    head, mark, tail = client_id.rpartition(REPLACEMENT_MARK)
    if mark and tail.isdigit():
        client_id = head
    return order_id_of(prefix, client_id)


LEG_BITS = 8
"""Low bits of a fill's key that hold the ordinal of its leg (saturating at `LEG_MAX`)."""
LEG_MAX = (1 << LEG_BITS) - 1
"""A fill of the leg with this ordinal or a later one: counted against the leg in force."""


def execution_key(execution_id: str, leg: int = 0) -> int:
    """A venue's execution id as the 63-bit number kept in the fill's ``payload`` slot: a
    hash of it, with the ordinal of its leg (0: the order's first venue order) in the low
    `LEG_BITS` bits. One execution is of one leg, so the key stays one per execution."""
    digest = hashlib.blake2b(execution_id.encode(), digest_size=8).digest()
    hashed = int.from_bytes(digest, "little") & ((1 << (63 - LEG_BITS)) - 1)
    return (hashed << LEG_BITS) | min(leg, LEG_MAX)


def leg_of_key(key: int) -> int:
    """The leg ordinal kept in a fill's key (`execution_key`)."""
    return key & LEG_MAX


@dataclasses.dataclass
class Leg:
    """One venue order of an engine order: the first, or one that replaced the one before."""

    client_id: str
    qty: int
    """0 for an order sized by value at the venue (no overfill check then)."""
    price: int = 0
    venue_id: str | None = None
    filled: int = 0
    settled: bool = False
    """The venue showed it ended (replaced, filled, canceled...): ``filled`` is final. A
    replaced leg that is not is asked for on reconciliation (it may have filled between the
    replace request and the venue's replacing it, the news lost with a connection)."""


@dataclasses.dataclass(frozen=True)
class Replacement:
    """A modify on its way to the venue: the leg it asks for."""

    seq: int
    """Of the modify command."""
    client_id: str
    qty: int
    """What stays open once it is in place."""
    price: int


@dataclasses.dataclass
class TrackedOrder:
    order_id: int
    instrument: int
    side: int
    legs: list[Leg]
    """Its venue orders, the one in force last."""
    acked: bool = False
    done: bool = False
    ambiguous: bool = False
    replacing: Replacement | None = None
    """The modify whose outcome is not known yet (one at a time per order)."""

    @property
    def leg(self) -> Leg:
        return self.legs[-1]

    @property
    def client_id(self) -> str:
        return self.leg.client_id

    @property
    def venue_id(self) -> str | None:
        return self.leg.venue_id

    @venue_id.setter
    def venue_id(self, value: str | None) -> None:
        self.leg.venue_id = value

    @property
    def price(self) -> int:
        return self.leg.price

    @property
    def filled(self) -> int:
        return sum(leg.filled for leg in self.legs)

    @property
    def qty(self) -> int:
        """The engine order's quantity: what the replaced legs filled and what the leg in
        force asks for (0: sized by value)."""
        if not self.leg.qty:
            return 0
        return sum(leg.filled for leg in self.legs[:-1]) + self.leg.qty

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
        self._unsettled: dict[str, tuple[TrackedOrder, Leg]] = {}
        """Replaced legs not settled, by client order id (`unsettled_legs`)."""

    # -- commands -------------------------------------------------------------------------

    def add(self, command: Command) -> TrackedOrder:
        order = TrackedOrder(
            command.order_id,
            command.instrument,
            command.side,
            [Leg(command.client_order_id, command.qty, command.price)],
        )
        self.by_client[order.client_id] = order
        self.by_order[order.order_id] = order
        return order

    def replace(self, order: TrackedOrder, command: Command) -> Replacement:
        """Notes that modify ``command`` is on its way to the venue for ``order``; its
        replacement's client order id is known from now on."""
        replacement = Replacement(
            command.seq,
            replacement_id(command.client_order_id, command.seq),
            command.qty,
            command.price,
        )
        order.replacing = replacement
        self.by_client[replacement.client_id] = order
        return replacement

    def replaced(self, order: TrackedOrder, venue_id: str | None) -> Leg | None:
        """The venue put the replacement in place (its order ``venue_id``): it is the leg in
        force from now on, reported as ``ORDER_MODIFIED``. None if no replace is waiting."""
        replacement = order.replacing
        if replacement is None:
            return None
        order.replacing = None
        leg = Leg(replacement.client_id, replacement.qty, replacement.price, venue_id)
        order.legs.append(leg)
        self._replaced_leg(order)
        self.inbox.push(
            Event(
                K_ORDER_MODIFIED,
                self.inbox.now(),
                instrument=order.instrument,
                order_id=order.order_id,
                side=order.side,
                price=leg.price,
                qty=leg.qty,
                aux=replacement.seq,
            )
        )
        return leg

    def refuse(
        self, order_id: int, instrument: int, command: Command | Replacement, reason: str
    ) -> None:
        """Reports a modify refused (``side`` NONE: the order itself stays as it was)."""
        self.inbox.push(
            Event(
                K_ORDER_REJECTED,
                self.inbox.now(),
                instrument=instrument,
                order_id=order_id,
                price=command.price,
                qty=command.qty,
                aux=command.seq,
            ),
            reason,
        )

    def refuse_replacement(self, order: TrackedOrder, reason: str) -> None:
        """The venue refused the waiting replace (or never got it): the order stays open."""
        replacement = order.replacing
        if replacement is None:
            return
        order.replacing = None
        self.refuse(order.order_id, order.instrument, replacement, reason)

    def leg_of(self, order: TrackedOrder, client_id: str | None) -> Leg:
        """The leg with ``client_id`` (the one in force if None or unknown)."""
        if client_id is not None:
            for leg in order.legs:
                if leg.client_id == client_id:
                    return leg
        return order.leg

    def open_orders(self) -> list[TrackedOrder]:
        return [o for o in self.by_order.values() if not o.done]

    def unsettled_legs(self) -> list[tuple[TrackedOrder, Leg]]:
        """Replaced legs whose last fills may not have been heard (see `Leg.settled`), in
        the order they were replaced."""
        return list(self._unsettled.values())

    def settle(self, leg: Leg) -> None:
        """The venue showed ``leg`` ended: its filled quantity is final."""
        leg.settled = True
        self._unsettled.pop(leg.client_id, None)

    def _replaced_leg(self, order: TrackedOrder) -> None:
        """The leg before the one in force was just replaced."""
        leg = order.legs[-2]
        if not leg.settled:
            self._unsettled[leg.client_id] = (order, leg)

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
        client_id: str | None = None,
    ) -> bool:
        """Reports a fill of ``order``'s leg ``client_id`` (the leg in force if None) unless
        it is a duplicate or an overfill (recorded instead); ``cumulative`` is the leg's
        filled quantity at the venue with it. True if reported."""
        leg = self.leg_of(order, client_id)
        ordinal = next(i for i, known in enumerate(order.legs) if known is leg)
        key = execution_key(execution_id, ordinal)
        if key in self.executions or (cumulative is not None and cumulative <= leg.filled):
            self.duplicates += 1
            self.inbox.record(
                LiveCode.DUPLICATE_FILL,
                {"client_order_id": leg.client_id, "execution_id": execution_id},
            )
            return False
        if leg.qty and leg.filled + qty > leg.qty:
            self.overfills += 1
            self.inbox.record(
                LiveCode.OVERFILL,
                {
                    "client_order_id": leg.client_id,
                    "execution_id": execution_id,
                    "filled": leg.filled,
                    "qty": qty,
                    "order_qty": leg.qty,
                },
            )
            return False
        self.ack(order, None)
        self.executions.add(key)
        leg.filled += qty
        signed = qty if order.side == 1 else -qty
        self.positions[order.instrument] = self.positions.get(order.instrument, 0) + signed
        if leg is order.leg and leg.qty and leg.filled >= leg.qty:
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
        self.refuse_replacement(order, "the order is no longer open")
        if kind == K_ORDER_REJECTED:
            self.inbox.push(order.report(kind, self.inbox.now()), reason or "rejected by the venue")
        else:
            self.inbox.push(order.report(kind, self.inbox.now()), reason)

    # -- resume ---------------------------------------------------------------------------

    @classmethod
    def from_log(
        cls, prefix: str, inbox: Inbox, events: EventArray, *, leg_keys: bool = True
    ) -> OrderTracker:
        """The tracker of a session whose log holds ``events``.

        A fill is counted against the leg its key names (`execution_key`), so a replaced
        leg's fill heard after its replacement's ``ORDER_MODIFIED`` counts against the
        replaced leg. ``leg_keys`` False: a log written before fill keys named their leg
        (its manifest says so); each fill then counts against the leg in force when it was
        applied."""
        tracker = cls(prefix, inbox)
        inputs = (events["flags"] & Flag.INPUT) != 0
        # Modifies that left for the venue and were not answered yet, per order, by seq.
        waiting: dict[int, dict[int, Replacement]] = {}
        for row, is_input in zip(events, inputs.tolist(), strict=True):
            kind = int(row["kind"])
            order_id = int(row["order_id"])
            if kind == K_ORDER_SUBMIT and not is_input:
                order = TrackedOrder(
                    order_id,
                    int(row["instrument"]),
                    int(row["side"]),
                    [Leg(client_order_id(prefix, order_id), int(row["qty"]), int(row["price"]))],
                )
                tracker.by_client[order.client_id] = order
                tracker.by_order[order_id] = order
                continue
            tracked = tracker.by_order.get(order_id)
            if tracked is None:
                continue
            if kind == K_ORDER_MODIFY and not is_input:
                seq = int(row["seq"])
                replacement = Replacement(
                    seq,
                    replacement_id(tracked.legs[0].client_id, seq),
                    int(row["qty"]),
                    int(row["price"]),
                )
                waiting.setdefault(order_id, {})[seq] = replacement
                tracker.by_client[replacement.client_id] = tracked
                continue
            if kind == K_ORDER_REJECTED and int(row["side"]) == 0:
                # A refused modify (or cancel): by the venue (its seq in ``aux``), or before
                # it left (an output right after its command).
                pending = waiting.get(order_id, {})
                if is_input:
                    pending.pop(int(row["aux"]), None)
                elif pending:
                    pending.pop(max(pending))
                continue
            if not is_input and kind in (K_ORDER_ACCEPTED, K_FILL, K_ORDER_MODIFIED):
                continue
            # Refusals by validation, risk or the gate are outputs; the venue's are inputs.
            if kind == K_ORDER_ACCEPTED:
                tracked.acked = True
            elif kind == K_ORDER_MODIFIED:
                done = waiting.get(order_id, {}).pop(int(row["aux"]), None)
                if done is not None:
                    tracked.legs.append(Leg(done.client_id, done.qty, done.price))
                    tracker._replaced_leg(tracked)
            elif kind == K_FILL:
                qty = int(row["qty"])
                key = int(row["payload"])
                tracker.executions.add(key)
                tracked.acked = True
                ordinal = leg_of_key(key) if leg_keys else LEG_MAX
                known = ordinal < min(len(tracked.legs), LEG_MAX)
                leg = tracked.legs[ordinal] if known else tracked.leg
                leg.filled += qty
                signed = qty if tracked.side == 1 else -qty
                inst = tracked.instrument
                tracker.positions[inst] = tracker.positions.get(inst, 0) + signed
                if leg is tracked.leg and leg.qty and leg.filled >= leg.qty:
                    tracked.done = True
            elif kind in (K_ORDER_REJECTED, K_ORDER_CANCELED, K_ORDER_EXPIRED):
                tracked.done = True
        for order_id, pending in waiting.items():
            # The adapter sends one modify of an order at a time, in order: only the first
            # unanswered one may have reached the venue (reconciliation asks for it); the
            # others were never sent, and a resumed session sends nothing twice.
            order = tracker.by_order[order_id]
            if not pending or order.done:
                continue
            first, *unsent = sorted(pending)
            order.replacing = pending[first]
            for seq in unsent:
                tracker.refuse(
                    order_id, order.instrument, pending[seq], "not sent: the session stopped"
                )
        return tracker

    def summary(self) -> dict[str, Any]:
        return {
            "orders": len(self.by_order),
            "open": len(self.open_orders()),
            "fills": len(self.executions),
            "duplicates": self.duplicates,
            "overfills": self.overfills,
        }
