"""The live node's inputs: adapters push into the Rust ``EventQueue``; the kernel thread
drains it in batches.

Payloads cannot travel in the 64-byte records, so an event with a payload carries a key in
its ``payload`` slot and the payload waits in a table until the kernel's feed takes the event
out of the queue (the key is recorded with the event; a replay feeds the recorded payloads
directly).

The kernel's feed (`Inbox.fill`) pops straight into the kernel in Rust. A producer ends each
burst (what one message of its venue carried) with `Inbox.hand_off`: the kernel thread,
polling for input with the GIL released, needs the GIL to apply what it popped, and a
producer that goes on running Python keeps it; handing it over saves the kernel a sleep and
a wake-up (10-30 us on a virtual machine) on the path from a tick to its order.

Back-pressure (the queue is bounded): orders, acknowledgements, fills and the session's own
records are never dropped: `Inbox.push` waits for room. Market data may be conflated:
`Inbox.offer_market` keeps only the latest message per (kind, instrument) while the queue is
full, re-offers it when there is room, and counts what it replaced in a ``CONFLATED`` record.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any

import numpy as np

from admf._core import Event, KernelCore
from admf.clock import WallClock
from admf.events import F_HAS_PAYLOAD, EventArray
from admf.kernel import Payload
from admf.live.codes import LiveCode, live_event
from admf.queue import EndOfStream, EventQueue, QueueClosed, QueueFull

_WAIT_SLICE = 0.05
"""Seconds one wait of the kernel thread (or of a producer for room) blocks before it looks
again at whether the session is ending."""
BUSY_POLL = 0.0002
"""Seconds the kernel thread polls the queue before it parks, by default: waking a parked
thread takes a system call (10-30 us on a virtual machine), more than the tick-to-order
path itself; polling 200 us after each batch costs that much CPU and keeps a busy market's
ticks from waiting for a wake-up."""


class Inbox:
    """Producers' side of the queue, and the kernel's feed (see the module docstring)."""

    def __init__(
        self, capacity: int = 65_536, clock: WallClock | None = None, busy_poll: float = BUSY_POLL
    ) -> None:
        self.queue = EventQueue(capacity)
        self.busy_poll = busy_poll
        """Seconds the kernel's feed polls before it parks (see `BUSY_POLL`)."""
        self.clock = clock or WallClock()
        self._payloads: dict[int, Any] = {}
        self._keys = itertools.count(1)
        self._conflated: dict[tuple[int, int], Event] = {}
        self._lock = threading.Lock()
        self.conflated = 0
        self._recorded = 0
        """Market messages replaced by a newer one while the queue was full."""
        self.max_batch = 4096
        self.consumer_gone = threading.Event()
        """Set when the kernel stopped draining (it failed or ended): a push no longer waits
        for room that will never come."""

    def now(self) -> int:
        return self.clock.now_ns()

    # -- producers (any thread) -----------------------------------------------------------

    def push(self, event: Event, payload: Payload | None = None) -> None:
        """Pushes an event that must not be lost, waiting for room if the queue is full.
        After the session closed its queue (it is over: nothing more can be applied or
        logged) the event is dropped."""
        if self.queue.closed:
            return
        if payload is not None:
            key = next(self._keys)
            self._payloads[key] = payload
            event = event.replace(flags=event.flags | F_HAS_PAYLOAD, payload=key)
        try:
            if self.queue.push(event):
                return
            while not self.consumer_gone.is_set():
                try:
                    self.queue.push_wait(event, _WAIT_SLICE)
                    return
                except QueueFull:
                    continue
        except QueueClosed:
            return  # closed meanwhile (see above)

    def record(self, code: LiveCode, payload: Payload | None = None, *, aux: int = 0) -> None:
        """Pushes one of the session's own records, stamped now."""
        self.push(live_event(code, self.now(), aux=aux), payload)

    def offer_market(self, event: Event) -> None:
        """Pushes market data, conflating it while the queue is full."""
        if self.queue.closed:
            return
        if self._conflated:
            self._retry_conflated()
        if self._conflated or not self.queue.push(event):
            with self._lock:
                key = (event.kind, event.instrument)
                if key in self._conflated:
                    self.conflated += 1
                self._conflated[key] = event

    def _retry_conflated(self) -> None:
        with self._lock:
            pending = list(self._conflated.items())
            for key, event in pending:
                if not self.queue.push(event):
                    return
                del self._conflated[key]
            if not self._conflated and self.conflated > self._recorded:
                record = live_event(LiveCode.CONFLATED, self.now(), qty=self.conflated)
                if self.queue.push(record):
                    self._recorded = self.conflated

    def hand_off(self) -> None:
        """Ends a burst of pushes (an adapter calls it after each message it received): a
        kernel thread polling for input gets the GIL at once and applies the burst before
        this thread goes on (see `EventQueue.hand_off`)."""
        self.queue.hand_off(self.busy_poll)

    def close(self) -> None:
        """Ends the input stream: the kernel drains what is queued (the conflated messages
        still waiting and their count included, waiting for room), then stops."""
        with self._lock:
            waiting = list(self._conflated.values())
            self._conflated.clear()
        for event in waiting:
            self.push(event)
        if self.conflated > self._recorded:
            self.push(live_event(LiveCode.CONFLATED, self.now(), qty=self.conflated))
            self._recorded = self.conflated
        self.queue.close()

    # -- the kernel thread ----------------------------------------------------------------

    def fill(self, core: KernelCore, input_payloads: deque[Payload]) -> bool:
        """The kernel's `Feed`: appends the next batch of inputs to ``core`` straight from
        the queue, waiting for one, and their payloads to ``input_payloads``; False at the
        end."""
        keys = core.extend_from_queue(self.queue, self.max_batch, _WAIT_SLICE, self.busy_poll)
        if keys is None:
            return False
        if keys:
            input_payloads.extend(self._take(keys))
        return True

    def feed(self) -> tuple[EventArray, list[Payload | None] | None] | None:
        """The next batch as an array with a payload (or None) per event (None for none),
        waiting for one; None at the end: the inputs `fill` would give the kernel, for a
        reader other than the kernel."""
        while True:
            try:
                batch = self.queue.pop_batch(
                    self.max_batch, timeout=_WAIT_SLICE, spin=self.busy_poll
                )
            except EndOfStream:
                return None
            if len(batch):
                break
        marked = np.flatnonzero(batch["flags"] & F_HAS_PAYLOAD)
        if not len(marked):
            return batch, None
        payloads: list[Payload | None] = [None] * len(batch)
        taken = self._take(batch["payload"][marked].tolist())
        for i, payload in zip(marked.tolist(), taken, strict=True):
            payloads[i] = payload
        return batch, payloads

    def _take(self, keys: list[int]) -> list[Payload]:
        """The payloads pushed under ``keys``, taken out of the table."""
        table = self._payloads
        return [table.pop(key, "") for key in keys]
