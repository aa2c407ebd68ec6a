"""Order commands on their way to a venue adapter, and their client order ids.

The order path in Rust collects the commands that passed validation, risk and the live gate
for an external venue (``KernelCore.take_commands``); the `Outbox` takes them after the kernel
flushed them to the log and makes them `Command` s for the execution adapter (so a command is
in the log before its request leaves the process; see `admf.live.session`).

A client order id is derived from the run and the order (`client_order_id`): the same
command always has the same id, so a retried or re-sent request cannot create a second order
(the venue refuses a duplicate client order id), and a restarted session recognises its own
orders at the venue.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Final

from admf._core import Event, KernelCore
from admf.events import F_FOK, F_IOC, F_MARKET

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
    """The commands a node's order path collected for its venue adapter (see the module
    docstring)."""

    def __init__(self, core: KernelCore, prefix: str) -> None:
        self._core = core
        self.prefix = prefix

    def take(self) -> list[Event]:
        """The commands collected since the last call, in seq order (in the kernel thread,
        once they are flushed). The events as they are: the `Command` s are made on the
        adapter's side, off the kernel thread's path from a tick to its order."""
        return self._core.take_commands()

    def commands(self, events: list[Event]) -> list[Command]:
        return [Command.of(event, self.prefix) for event in events]
