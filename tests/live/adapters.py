"""An execution adapter plugin for the tests (``tests.live.adapters:make_checking``): a venue
that fills every order at once at the command's price or 100, and that checks, for every
command it is handed, that the session's log already holds it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from admf.events import K_ORDER_SUBMIT
from admf.live.adapter import AdapterContext
from admf.live.codes import LiveCode
from admf.live.outbox import Command
from admf.log import EventLog

LOG_DIRS: list[Path] = []
"""The test names the session's log directory here before the session starts."""


class CheckingExecution:
    def __init__(self, context: AdapterContext) -> None:
        assert context.tracker is not None
        self.context = context
        self.tracker = context.tracker
        self.seen: list[tuple[int, bool]] = []
        """(seq of a command, whether the log held it when it was handed over)."""

    async def connect(self) -> None:
        return None

    async def reconcile(self) -> None:
        self.context.inbox.record(LiveCode.RECONCILED, {"orders_checked": 0})

    async def run(self) -> None:
        await asyncio.Event().wait()

    def send(self, commands: Sequence[Command]) -> None:
        with EventLog.open(LOG_DIRS[-1], read_only=True) as log:
            last = log.last_seq
        for command in commands:
            self.seen.append((command.seq, command.seq <= last))
            if command.kind != K_ORDER_SUBMIT:
                continue
            order = self.tracker.add(command)
            self.tracker.ack(order, f"venue-{command.order_id}")
            price = command.price or 100 * 10**9
            self.tracker.fill(order, f"x-{command.order_id}", price, command.qty, command.qty)

    def busy(self) -> bool:
        return False

    async def disconnect(self) -> None:
        return None


def make_checking(context: AdapterContext) -> Any:
    return CheckingExecution(context) if context.tracker is not None else None
