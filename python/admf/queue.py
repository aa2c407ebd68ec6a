"""``EventQueue``: the bounded lock-free multi-producer single-consumer queue of events.

The ring lives in Rust (``rust/src/queue.rs``). Single events cross as ``Event`` objects
through the compiled methods (``push``, ``pop``, ``push_wait``, ``pop_wait``) with no Python
layer in between; batches cross as numpy ``EVENT_DTYPE`` arrays or Arrow record batches,
copied straight into and out of the ring.

Back-pressure is explicit: ``push`` returns False and ``push_batch`` returns how many events
it took when the queue is full; the ``*_wait`` forms and a ``timeout`` wait for room instead.
Nothing is ever dropped silently. After ``close()`` producers get ``QueueClosed``; the consumer
drains what is left and then gets ``EndOfStream``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from admf import _core
from admf._core import EndOfStream, Event, QueueClosed, QueueFull
from admf.events import (
    EVENT_DTYPE,
    EventArray,
    arrow_columns,
    check_event_array,
    from_arrow,
)

__all__ = ["EndOfStream", "EventQueue", "QueueClosed", "QueueFull"]


def _closed_after(pushed: int, of: int) -> QueueClosed:
    exc = QueueClosed(
        f"push to a closed EventQueue: {pushed} of {of} events of the batch were pushed before "
        "it closed (they will be popped; the rest were not pushed)"
    )
    exc.pushed = pushed  # type: ignore[attr-defined]
    return exc


class _ArrowCapsules:
    """A popped batch in the Arrow PyCapsule protocol, for ``pa.record_batch`` to import."""

    __slots__ = ("_capsules",)

    def __init__(self, capsules: tuple[object, object]) -> None:
        self._capsules = capsules

    def __arrow_c_array__(self, requested_schema: object = None) -> tuple[object, object]:
        return self._capsules


# How long one async wait blocks its helper thread before it looks at the asyncio side again;
# bounds how long a cancelled `await` keeps that thread.
_ASYNC_SLICE = 0.05


class EventQueue(_core.EventQueue):
    """A bounded lock-free MPSC queue of events (capacity rounded up to a power of two).

    Any number of producers (threads, asyncio tasks, native adapters) push; exactly one
    consumer pops. Events of one producer come out in the order it pushed them.
    """

    _consumer_pool: concurrent.futures.ThreadPoolExecutor | None = None
    _pool_lock = threading.Lock()

    # -- batches --------------------------------------------------------------------------

    def push_batch(
        self, batch: EventArray | pa.RecordBatch | pa.Table, timeout: float | None = 0.0
    ) -> int:
        """Pushes a batch (numpy ``EVENT_DTYPE`` array, or Arrow batch/table of
        ``EVENT_SCHEMA``), in order. ``timeout=0`` (the default) takes what fits now; a number
        waits up to that many seconds for room, ``None`` waits as long as it takes. Returns
        how many events were pushed: a prefix of the batch, all of it unless the queue was
        full. If the queue is closed before the batch is all in, ``QueueClosed`` is raised
        with ``pushed``, the number of events of the batch that went in (a prefix; they will
        be popped)."""
        wait = timeout != 0.0
        if isinstance(batch, pa.Table):
            pushed = 0
            for part in batch.to_batches():
                try:
                    n = self.push_batch(part, timeout)
                except QueueClosed as exc:
                    done = pushed + int(getattr(exc, "pushed", 0))
                    raise _closed_after(done, batch.num_rows) from None
                pushed += n
                if n < len(part):
                    break
            return pushed
        if isinstance(batch, pa.RecordBatch):
            # Through the Arrow C data interface: the columns are read where pyarrow keeps them.
            schema, array = batch.__arrow_c_array__()
            taken = self._push_arrow(schema, array, wait=wait, timeout=timeout)
            if taken is not None:
                return taken
            # Not plain EVENT_SCHEMA columns: arrow_columns checks them and says what is wrong
            # (or makes numpy views of columns whose buffers are not aligned for their type).
            push_columns: Any = self._push_columns
            checked: int = push_columns(*arrow_columns(batch), wait=wait, timeout=timeout)
            return checked
        events = check_event_array(batch)
        raw = events.view(np.uint8)
        if wait:
            return self._push_bytes_wait(raw, timeout)
        return self._push_bytes(raw)

    def pop_batch(
        self, max_events: int | None = None, timeout: float | None = 0.0, spin: float = 0.0
    ) -> EventArray:
        """Pops up to ``max_events`` (default: the capacity) as a numpy ``EVENT_DTYPE`` array.
        ``timeout=0`` (the default) returns at once, possibly an empty array; otherwise waits
        up to ``timeout`` seconds (``None``: as long as it takes) for the first event, polling
        for the first ``spin`` seconds of it (see `wait`). Raises ``EndOfStream`` once the
        queue is closed and drained."""
        limit = self._limit(max_events)
        if timeout != 0.0:
            self.wait(timeout, spin)
        out = np.empty(min(limit, max(len(self), 1)), dtype=EVENT_DTYPE)
        n = self._pop_into(out.view(np.uint8))
        return out[:n]

    def pop_record_batch(
        self, max_events: int | None = None, timeout: float | None = 0.0
    ) -> pa.RecordBatch:
        """Like ``pop_batch``, as an Arrow record batch of ``EVENT_SCHEMA`` (the popped columns
        are written once, into memory the batch then owns)."""
        limit = self._limit(max_events)
        if timeout != 0.0:
            self.wait(timeout)
        size = min(limit, max(len(self), 1))
        return pa.record_batch(_ArrowCapsules(self._pop_arrow(size)))

    def _limit(self, max_events: int | None) -> int:
        if max_events is None:
            return self.capacity
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, got {max_events}")
        return max_events

    # -- iteration ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Event]:
        """Yields events as they arrive until the queue is closed and drained."""
        while True:
            try:
                event = self.pop_wait()
            except EndOfStream:
                return
            if event is not None:
                yield event

    # -- asyncio --------------------------------------------------------------------------

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with EventQueue._pool_lock:
            if self._consumer_pool is None:
                self._consumer_pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="admf-queue-wait"
                )
            return self._consumer_pool

    async def pop_batch_async(self, max_events: int | None = None) -> EventArray:
        """Awaits the next non-empty batch (up to ``max_events``) without blocking the event
        loop: the wait runs with the GIL released in a helper thread. Raises ``EndOfStream``
        once the queue is closed and drained."""
        loop = asyncio.get_running_loop()
        while True:
            batch = self.pop_batch(max_events)
            if len(batch):
                return batch
            await loop.run_in_executor(self._pool(), self.wait, _ASYNC_SLICE)

    async def batches(self, max_events: int | None = None) -> AsyncIterator[EventArray]:
        """``async for batch in queue.batches()``: every batch until the end of the stream."""
        while True:
            try:
                yield await self.pop_batch_async(max_events)
            except EndOfStream:
                return

    async def push_async(self, item: Event | EventArray | pa.RecordBatch) -> None:
        """Pushes an event or a whole batch from a coroutine, awaiting room without blocking
        the event loop. Raises ``QueueClosed`` if the queue closes first."""
        loop = asyncio.get_running_loop()
        if isinstance(item, Event):
            while not self.push(item):
                try:
                    await loop.run_in_executor(None, self.push_wait, item, _ASYNC_SLICE)
                    return
                except QueueFull:
                    continue
            return
        events = from_arrow(item) if isinstance(item, pa.RecordBatch) else check_event_array(item)
        done = self.push_batch(events)
        while done < len(events):
            done += await loop.run_in_executor(None, self.push_batch, events[done:], _ASYNC_SLICE)

    def __del__(self) -> None:
        pool = self._consumer_pool
        if pool is not None:
            pool.shutdown(wait=False)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<EventQueue {len(self)}/{self.capacity} events, {state}>"
