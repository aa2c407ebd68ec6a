"""The kernel: sequencer, clock and bus of one run.

One thread applies events in ``seq`` order. The merged inputs live in Rust
(``_core.KernelCore``), which sequences them and appends them to the run's output in bulk;
only inputs of a kind some Python handler subscribed to cross into Python, one ``Event`` per
handler call, from a dispatch loop in Rust. Anything a handler causes (an order, a signal, a
venue report, an error) is emitted through `Kernel.emit` (order commands through
`Kernel.command`, which runs the order path in Rust at once): it takes the next ``seq`` at
once and is dispatched as soon as the current handler returns, before the next handler of the
same event runs, in ``seq`` order (first in, first out), so the log's order is the order in
which things happened.

Business logic reads time only from ``kernel.now`` (the timestamp of the event being
applied) and randomness only from ``kernel.rng``, seeded from the run's recorded seed.
A handler that raises does not stop the run: an ``ERROR`` event records the handler, the
event and the traceback, and ``on_error="stop"`` ends the run after logging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import heapq
import random
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter_ns
from typing import Any, Protocol

import numpy as np

from admf._core import Event, KernelCore
from admf.errors import AdmfError
from admf.events import (
    BUY,
    EVENT_DTYPE,
    F_HAS_PAYLOAD,
    F_MARKET,
    K_ORDER_REJECTED,
    K_ORDER_SUBMIT,
    SELL,
    EventArray,
    Flag,
    Kind,
)
from admf.log.payload import encode_payload
from admf.strategy import Component

Payload = Any
Sink = Callable[[EventArray, list[Payload | None] | None], None]
Feed = Callable[["KernelCore", "deque[Payload]"], bool]
"""A live source: appends the next inputs to the kernel's core, waiting for them, and the
payloads of those flagged ``HAS_PAYLOAD`` (one each, in order) to the deque; False when the
source has ended (see `Inbox.fill`, `batch_feed`)."""


def extend_inputs(
    core: KernelCore,
    input_payloads: deque[Payload],
    events: EventArray,
    payloads: list[Payload | None] | None,
) -> None:
    """Appends a batch of inputs to ``core``, and their payloads to ``input_payloads`` (see
    `Feed`): ``payloads`` holds one per event, or is None when no event is flagged."""
    if payloads is not None:
        # Inputs are sequenced in the order they are appended: their payloads wait in that
        # order until `Kernel._flush` knows their seqs (one per flagged input, always).
        marked = np.flatnonzero(events["flags"] & F_HAS_PAYLOAD).tolist()
        input_payloads.extend(b"" if payloads[i] is None else payloads[i] for i in marked)
    core.extend(np.ascontiguousarray(events).view(np.uint8))


def recorded_inputs(
    events: EventArray, payloads: list[Payload | None]
) -> tuple[EventArray, list[Payload | None]]:
    """The inputs of a recorded run (its events flagged ``INPUT``) with their payloads, as a
    batch to be sequenced again."""
    chosen = np.flatnonzero((events["flags"] & Flag.INPUT) != 0)
    batch = events[chosen].copy()
    batch["seq"] = 0
    return batch, [payloads[i] for i in chosen.tolist()]


def batch_feed(
    batches: Callable[[], tuple[EventArray, list[Payload | None] | None] | None],
) -> Feed:
    """A `Feed` over a callable that returns the next batch of inputs with their payloads
    (None for none), or None when the source has ended."""

    def feed(core: KernelCore, input_payloads: deque[Payload]) -> bool:
        batch = batches()
        if batch is None:
            return False
        extend_inputs(core, input_payloads, *batch)
        return True

    return feed


class RunStopped(AdmfError):
    """A handler raised and the run was set to stop on errors."""


@dataclasses.dataclass
class HandlerStats:
    """Calls, time spent and errors of one handler. ``calls`` is exact; ``ns`` is estimated
    from a sample of the calls (one event in ``SAMPLE_EVERY``), which keeps the clock out of
    the hot loop."""

    name: str
    kind: str
    calls: int = 0
    ns: int = 0
    errors: int = 0
    sampled_calls: int = 0
    sampled_ns: int = 0


SAMPLE_EVERY = 127
"""One input in this many is timed per handler for `HandlerStats.ns` (a prime, so that
inputs of alternating kinds do not alias with it; rare enough that reading the clock costs
the run about 1 ns an event); events emitted by components are rarer and always timed."""


class Subscription:
    """A handler subscribed to one kind; ``active = False`` takes it out of dispatch until
    it is set again (the bar venue listens to bars only while it holds orders)."""

    def __init__(
        self,
        kernel: Kernel,
        kind: int,
        fn: Callable[[Event], object],
        stats: HandlerStats,
        priority: int,
    ) -> None:
        self.kernel = kernel
        self.kind = kind
        self.fn = fn
        self.stats = stats
        self.priority = priority
        self._active = False
        self._since = 0
        self._calls = 0

    @property
    def active(self) -> bool:
        return self._active

    @active.setter
    def active(self, on: bool) -> None:
        if on == self._active:
            return
        count = self.kernel.core.count(self.kind)
        if on:
            self._since = count
        else:
            self._calls += count - self._since
        self._active = on
        self.kernel._rebuild(self.kind)

    def calls(self) -> int:
        total = self._calls
        if self._active:
            total += self.kernel.core.count(self.kind) - self._since
        return total


def hash_outputs(
    events: EventArray,
    payloads: Sequence[Payload | None] | None,
    event_hash: Any,
    payload_hash: Any,
) -> None:
    """Feeds the output events of a chunk (not the recorded inputs) into ``event_hash`` and
    their payloads, each behind its seq, into ``payload_hash``. Chunking does not change the
    result, so a run and its log hash the same."""
    flags = events["flags"]
    outputs = (flags & Flag.INPUT) == 0
    event_hash.update(events[outputs].view(np.uint8))
    if payloads is None:
        return
    seqs = events["seq"]
    # An event with a payload is flagged so: only those are visited (a chunk of 65,536
    # outputs has a few hundred).
    for i in np.flatnonzero(outputs & ((flags & F_HAS_PAYLOAD) != 0)).tolist():
        payload = payloads[i]
        if payload is not None:
            payload_hash.update(int(seqs[i]).to_bytes(8, "little"))
            payload_hash.update(encode_payload(payload) or b"")


def combine_hashes(event_hash: Any, payload_hash: Any) -> str:
    """The output hash of a run: SHA-256 of the events' and the payloads' digests."""
    return hashlib.sha256(event_hash.digest() + payload_hash.digest()).hexdigest()


class OrderStage(Protocol):
    """One stage of the order pipeline: returns False to stop the order there (the stage
    logs its own decision)."""

    name: str

    def process(self, order: Event, kernel: Kernel) -> bool: ...


class Validation:
    """Rejects malformed orders before risk sees them (the Python twin of
    ``rust/src/orders/validation.rs``, for runs with a replaced stage)."""

    name = "validation"

    def __init__(self, instruments: Sequence[int]) -> None:
        self.instruments = set(instruments)

    def problem(self, order: Event) -> str | None:
        if order.kind != K_ORDER_SUBMIT:
            return None
        if order.side != BUY and order.side != SELL:
            return "side must be BUY or SELL"
        if order.instrument not in self.instruments:
            return f"unknown instrument {order.instrument}"
        qty = order.qty_fx
        if qty < 0 or (qty == 0 and order.aux <= 0):
            return "qty must be positive (or qty 0 with a positive value to size at fill)"
        if not order.flags & F_MARKET and order.price_fx <= 0:
            return "a limit order needs a positive price"
        return None

    def process(self, order: Event, kernel: Kernel) -> bool:
        problem = self.problem(order)
        if problem is None:
            return True
        kernel.emit(order_report(K_ORDER_REJECTED, order), payload=problem)
        return False


class Audit:
    """The last stage: keeps every command that went through the pipeline, in order (the
    order states themselves are a projection of the log: ``admf query LOG "... FROM orders"``).
    Replace it to forward commands to an external audit trail."""

    name = "audit"

    def __init__(self) -> None:
        self.commands = 0
        self.last: dict[int, int] = {}
        """Order id -> the kind code of its last command."""

    def process(self, order: Event, kernel: Kernel) -> bool:
        self.commands += 1
        self.last[order.order_id] = order.kind
        return True


def order_report(kind: int, order: Event) -> Event:
    """The venue's (or a stage's) report on an order: the order's fields under ``kind``."""
    return order.as_kind(kind)


class Kernel:
    """Runs merged sources through subscribed handlers, in ``seq`` order."""

    def __init__(
        self,
        sources: Sequence[EventArray],
        *,
        seed: int = 0,
        on_error: str = "continue",
        flush_at: int = 65_536,
        sink: Sink | None = None,
        feed: Feed | None = None,
    ) -> None:
        if on_error not in ("continue", "stop"):
            raise AdmfError(f"on_error must be 'continue' or 'stop', got {on_error!r}")
        try:
            self.core = KernelCore(
                [np.ascontiguousarray(s).view(np.uint8) for s in sources], 1, flush_at
            )
        except ValueError as exc:
            raise AdmfError(str(exc)) from None
        self.seed = seed
        self.rng = random.Random(seed)
        self.on_error = on_error
        self.sink = sink
        self.feed = feed
        """Where inputs come from once ``sources`` are used up (a live queue); None: the run
        ends with them."""
        self._input_payloads: deque[Payload] = deque()
        self.components: list[Component] = []
        self.errors = 0
        self._subs: list[list[Subscription]] = [[] for _ in range(256)]
        self._handlers: list[tuple[tuple[Callable[[Event], object], HandlerStats], ...]] = [
            () for _ in range(256)
        ]
        self._pending: deque[Event] = deque()
        self._batch_handlers: list[tuple[int, Callable[[EventArray], None], HandlerStats]] = []
        self._payloads: dict[int, Payload] = {}
        self.payloads: dict[int, Payload] = {}
        """Every payload of the run so far, by the seq of its event."""
        self._timers: list[tuple[int, int]] = []
        self._next_timer_id = 1
        self._event_hash = hashlib.sha256()
        self._payload_hash = hashlib.sha256()
        self.progress: Callable[[int], None] | None = None
        """Called after each flush with the number of inputs not yet sequenced."""
        self._stop: RunStopped | None = None

    # -- wiring -------------------------------------------------------------------------

    @property
    def now(self) -> int:
        """The kernel's clock in ns: the timestamp of the event being applied."""
        return self.core.now

    def subscribe(
        self,
        kind: int,
        handler: Callable[[Event], object],
        name: str,
        instrument: int | None = None,
        active: bool = True,
    ) -> Subscription:
        """Calls ``handler`` with every event of ``kind`` (of ``instrument`` if given), after
        the handlers subscribed before it."""
        stats = HandlerStats(name, Kind(kind).name)
        fn = handler
        if instrument is not None:

            def fn(event: Event, handler: Callable[[Event], object] = handler) -> None:
                if event.instrument == instrument:
                    handler(event)

        sub = Subscription(self, kind, fn, stats, len(self._subs[kind]))
        self._subs[kind].append(sub)
        self.core.subscribe(kind)
        sub.active = active
        return sub

    def _rebuild(self, kind: int) -> None:
        # A new tuple, never a mutation: a dispatch loop running over the old one finishes it.
        self._handlers[kind] = tuple((sub.fn, sub.stats) for sub in self._subs[kind] if sub.active)

    @property
    def stats(self) -> list[HandlerStats]:
        """Statistics of every handler, in subscription order."""
        out = []
        for subs in self._subs:
            for sub in subs:
                stats = sub.stats
                stats.calls = sub.calls()
                if stats.sampled_calls:
                    stats.ns = stats.sampled_ns * stats.calls // stats.sampled_calls
                out.append(stats)
        return out

    def subscribe_batches(
        self, kind: int, handler: Callable[[EventArray], None], name: str
    ) -> HandlerStats:
        """Hands ``handler`` the events of ``kind`` as numpy ``EVENT_DTYPE`` arrays, a batch
        per flush of the kernel's output (every ``flush_at`` events and at the end), after they
        happened: for analytics, recording and dashboards, which need no event one at a time.
        Events of a kind only batch handlers want stay in Rust until the flush."""
        stats = HandlerStats(name, Kind(kind).name)
        self._batch_handlers.append((kind, handler, stats))
        return stats

    def subscribe_async(
        self,
        kind: int,
        handler: Callable[[Event], Awaitable[None]],
        name: str,
        loop: asyncio.AbstractEventLoop,
    ) -> HandlerStats:
        """Hands every event of ``kind`` to the coroutine function ``handler`` on ``loop``
        (an asyncio loop in another thread: asyncio stays at the edges). The kernel never
        awaits it: the event is queued to the loop and the run goes on, so an async handler
        observes and forwards (to a socket, a dashboard) but cannot change the run; its
        errors are logged on the loop, not in the run."""
        stats = HandlerStats(name, Kind(kind).name)

        def forward(event: Event) -> None:
            loop.call_soon_threadsafe(_spawn, loop, handler, event, stats)

        self.subscribe(kind, forward, f"{name} (async)")
        return stats

    def add_component(self, component: Component) -> None:
        self.components.append(component)

    def next_order_id(self) -> int:
        """A fresh order id of the run (counted in Rust, where the live gate takes the ids of
        the orders it makes)."""
        return self.core.next_order_id()

    # -- emitting -----------------------------------------------------------------------

    def emit(self, event: Event, payload: Payload | None = None) -> Event:
        """Sequences an event a component made (ts 0 means now); it is dispatched after the
        current handler returns."""
        if payload is not None:
            event = event.replace(flags=event.flags | F_HAS_PAYLOAD)
        sequenced = self.core.emit(event)
        if payload is not None:
            self._payloads[sequenced.seq] = payload
        self._pending.append(sequenced)
        return sequenced

    @property
    def pending(self) -> deque[Event]:
        """Events to dispatch once the current handler returns, in seq order (the order path
        in Rust appends what a command caused here)."""
        return self._pending

    def attach_payload(self, seq: int, payload: Payload) -> None:
        """Gives an event sequenced in Rust (flagged ``HAS_PAYLOAD`` there) its payload; it
        must not have been flushed yet."""
        self._payloads[seq] = payload

    def set_timer(self, at: int) -> int:
        """Fires a ``TIMER`` event at ``at`` ns (its ``order_id`` is the returned id)."""
        if at < self.now:
            raise AdmfError(f"timer at {at} is in the kernel's past ({self.now})")
        timer_id = self._next_timer_id
        self._next_timer_id += 1
        heapq.heappush(self._timers, (at, timer_id))
        self.core.set_alarm(self._timers[0][0])
        return timer_id

    # -- running ------------------------------------------------------------------------

    def run(self) -> None:
        """Initializes and starts the components, applies every input, stops them. With
        ``on_error="stop"`` a raising handler ends the run early (see `stopped`)."""
        try:
            for component in self.components:
                component.initialize()
            for component in self.components:
                component.start()
        except Exception as exc:
            # A component that cannot start is logged like a failing handler, and the run
            # does not begin.
            stats = HandlerStats(f"{type(component).__name__}.start", "NONE")
            self.on_error = "stop"
            with contextlib.suppress(RunStopped):
                self._handler_error(stats, Event(Kind.NONE, self.now), exc)
            self._flush()
            return
        self._drain_pending()
        core = self.core
        n = 0
        try:
            while True:
                # The dispatch loop runs in Rust (see `KernelCore.dispatch`): per event, a
                # handler call and nothing else in Python unless the handler made something.
                n = core.dispatch(
                    self._handlers,
                    self._pending,
                    self._drain_pending,
                    self._handler_error,
                    RunStopped,
                    SAMPLE_EVERY,
                    n,
                )
                if self.feed is not None and core.done:
                    # A live source: what happened so far goes to the sink (the log, then the
                    # venue) before the kernel waits for the next batch.
                    self._flush()
                    if not self.feed(core, self._input_payloads):
                        break
                    continue
                if core.alarm_due:
                    self._fire_timers()
                    continue
                self._flush()
                if core.done:
                    break
        except RunStopped:
            pass
        except BaseException:
            # Ctrl-C (or a crash of the kernel itself): what was applied so far still reaches
            # the sink, so the log keeps it; nothing marks the run finished.
            with contextlib.suppress(Exception):
                self._flush()
            raise
        for component in self.components:
            component.stop()
        self._drain_pending()
        self._flush()
        if self._pending:  # errors of batch handlers in the last flush
            self._drain_pending()
            self._flush()
        for component in self.components:
            component.teardown()

    @property
    def stopped(self) -> str | None:
        """Why the run stopped early (``on_error="stop"``), or None."""
        return None if self._stop is None else str(self._stop)

    def _dispatch_timed(self, event: Event) -> None:
        """Dispatches one event, timing each handler (the sampled path)."""
        for fn, stats in self._handlers[event.kind]:
            start = perf_counter_ns()
            try:
                fn(event)
            except RunStopped:
                raise
            except Exception as exc:
                self._handler_error(stats, event, exc)
            stats.sampled_ns += perf_counter_ns() - start
            stats.sampled_calls += 1
            if self._pending:
                self._drain_pending()

    def _handler_error(self, stats: HandlerStats, event: Event, exc: Exception) -> None:
        name = stats.name
        stats.errors += 1
        self.errors += 1
        detail = {
            "handler": name,
            "event_seq": event.seq,
            "event": repr(event),
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc)),
        }
        self.emit(Event(Kind.ERROR, 0, instrument=event.instrument, order_id=event.seq), detail)
        if self.on_error == "stop":
            self._stop = RunStopped(
                f"{name} raised {type(exc).__name__}: {exc} on event seq {event.seq}"
            )
            self._drain_pending()
            raise self._stop

    def _drain_pending(self) -> None:
        # What one handler caused is applied, in seq order, before the next handler sees the
        # event (the venue's fill on a bar reaches the portfolio before the strategy's
        # on_bar); events emitted meanwhile queue behind.
        pending = self._pending
        while pending:
            self._dispatch_timed(pending.popleft())

    def _handler_error_later(self, stats: HandlerStats, seq: int, exc: Exception) -> None:
        detail = {
            "handler": stats.name,
            "event_seq": seq,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc)),
        }
        self.emit(Event(Kind.ERROR, 0, order_id=seq), detail)

    def _fire_timers(self) -> None:
        due = self.core.peek_ts
        if due is None:
            # The data has ended: the run ends with it, and timers set past the last event
            # do not fire (a strategy that re-arms its timer would otherwise never stop).
            self._timers.clear()
            self.core.set_alarm(None)
            return
        while self._timers and self._timers[0][0] <= due:
            at, timer_id = heapq.heappop(self._timers)
            self.core.advance_clock(at)
            self.emit(Event(Kind.TIMER, at, order_id=timer_id))
            self._drain_pending()
        self.core.set_alarm(self._timers[0][0] if self._timers else None)

    def _flush(self) -> None:
        for seq, words in self.core.take_payloads():
            self._payloads[seq] = words
        raw = self.core.drain()
        if not len(raw):
            return
        # frombuffer, not .view: the view re-checks the structured dtype against the words,
        # a microsecond on a live batch of a few events (a quarter of that here).
        events = np.frombuffer(raw, EVENT_DTYPE)
        payloads: list[Payload | None] | None = None
        if self._input_payloads:
            flags = events["flags"]
            with_payload = np.flatnonzero(
                (flags & Flag.INPUT != 0) & (flags & F_HAS_PAYLOAD != 0)
            ).tolist()
            first = int(events["seq"][0])
            for i in with_payload:
                self._payloads[first + i] = self._input_payloads.popleft()
        if self._payloads:
            first = int(events["seq"][0])
            payloads = [None] * len(events)
            for seq, payload in self._payloads.items():
                payloads[seq - first] = payload
            self.payloads.update(self._payloads)
            self._payloads.clear()
        if self.sink is not None:
            # First the sink (a live session's log, then its venue): hashing can wait.
            self.sink(events, payloads)
        hash_outputs(events, payloads, self._event_hash, self._payload_hash)
        for kind, handler, stats in self._batch_handlers:
            mine = events[events["kind"] == kind]
            if len(mine):
                start = perf_counter_ns()
                try:
                    handler(mine)
                except Exception as exc:
                    stats.errors += 1
                    self.errors += 1
                    # Too late to log it in this chunk: it goes into the next one.
                    self._handler_error_later(stats, int(mine["seq"][0]), exc)
                stats.ns += perf_counter_ns() - start
                stats.calls += 1
        if self.progress is not None:
            self.progress(self.core.remaining)

    @property
    def output_hash(self) -> str:
        """The hash of every output event and payload so far (see `hash_outputs`)."""
        return combine_hashes(self._event_hash, self._payload_hash)

    def kind_counts(self) -> dict[str, int]:
        """Events sequenced per kind."""
        return {Kind(k).name: n for k, n in self.core.counts()}


def _spawn(
    loop: asyncio.AbstractEventLoop,
    handler: Callable[[Event], Awaitable[None]],
    event: Event,
    stats: HandlerStats,
) -> None:
    """Runs one async handler call on its loop, counting it."""
    stats.calls += 1
    loop.create_task(_run_async(handler, event, stats))


async def _run_async(
    handler: Callable[[Event], Awaitable[None]], event: Event, stats: HandlerStats
) -> None:
    start = perf_counter_ns()
    try:
        await handler(event)
    except Exception:
        stats.errors += 1
        raise
    finally:
        stats.ns += perf_counter_ns() - start
