"""Order commands on their way to a venue adapter, and their client order ids.

The `Outbox` is the venue's execution stage inside the kernel: it only collects the
commands that reached it. The session hands them to the execution adapter after the kernel
flushed them to the log (so a command is in the log before its request leaves the process;
see `admf.live.session`).

A client order id is derived from the run and the order (`client_order_id`): the same
command always has the same id, so a retried or re-sent request cannot create a second order
(the venue refuses a duplicate client order id), and a restarted session recognises its own
orders at the venue.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Final

from admf._core import Event
from admf.events import F_FOK, F_IOC, F_MARKET
from admf.kernel import Kernel

CLIENT_ID_PREFIX: Final[str] = "admf"


def client_prefix(run_id: str) -> str:
    """The part of a run's client order ids that names the run (short: Alpaca allows 48
    characters in all)."""
    return f"{CLIENT_ID_PREFIX}-{hashlib.blake2b(run_id.encode(), digest_size=6).hexdigest()}"


def client_order_id(prefix: str, order_id: int) -> str:
    return f"{prefix}-{order_id}"


def order_id_of(prefix: str, client_id: str) -> int | None:
    """The order id in one of this run's client order ids, else None."""
    head, _, tail = client_id.rpartition("-")
    if head != prefix or not tail.isdigit():
        return None
    return int(tail)


@dataclasses.dataclass(frozen=True)
class Command:
    """One order command as the execution adapter receives it (fixed point)."""

    seq: int
    kind: int
    order_id: int
    client_order_id: str
    instrument: int
    side: int
    qty: int
    price: int
    value: int
    market: bool
    ioc: bool
    fok: bool

    @classmethod
    def of(cls, event: Event, prefix: str) -> Command:
        flags = event.flags
        return cls(
            seq=event.seq,
            kind=event.kind,
            order_id=event.order_id,
            client_order_id=client_order_id(prefix, event.order_id),
            instrument=event.instrument,
            side=event.side,
            qty=event.qty_fx,
            price=event.price_fx,
            value=event.aux,
            market=bool(flags & F_MARKET),
            ioc=bool(flags & F_IOC),
            fok=bool(flags & F_FOK),
        )


class Outbox:
    """The execution stage of a node whose venue is an adapter (see the module docstring)."""

    name = "execution"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.pending: list[Event] = []

    def process(self, order: Event, kernel: Kernel) -> bool:
        # The event as it is (immutable): the `Command` is made on the adapter's side, off
        # the kernel thread's path from a tick to its order.
        self.pending.append(order)
        return True

    def take(self) -> list[Event]:
        """The commands collected since the last call."""
        taken, self.pending = self.pending, []
        return taken

    def commands(self, events: list[Event]) -> list[Command]:
        return [Command.of(event, self.prefix) for event in events]
