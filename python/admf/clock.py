"""Time as the kernel sees it: simulated (data) time and live (wall) time.

In a backtest or a replay the kernel's clock is the timestamp of the event being applied
(``kernel.now``): data time, which jumps from one input to the next. Timers fire when the
next input is at or after their time.

Live, business logic still reads time only from the kernel. Wall time enters the kernel as
input events like any other: every message an adapter receives is stamped with the local
receive time (`WallClock.now_ns`), and `clock_ticks` pushes a ``CLOCK`` reading every
``interval`` so timers fire even when the market is quiet. Because the readings are in the
log, a replay fires the same timers at the same points of the input stream.

A ``CLOCK`` event: ``ts`` is the local wall time in ns; ``aux`` the venue's time when the
reading came with a venue message (a bar frame), else 0.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Final

from admf._core import Event
from admf.events import Kind

K_CLOCK: Final[int] = int(Kind.CLOCK)


class WallClock:
    """Local wall time in ns, never going backwards (a stepped system clock is held at the
    last reading until it catches up), safe to read from several threads."""

    def __init__(self, source: Callable[[], int] = time.time_ns) -> None:
        self._source = source
        self._last = 0
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        reading = self._source()
        with self._lock:
            if reading < self._last:
                return self._last
            self._last = reading
            return reading


def clock_event(ts: int, venue_ts: int = 0) -> Event:
    """A ``CLOCK`` reading (see the module docstring)."""
    return Event(K_CLOCK, ts, aux=venue_ts)


async def clock_ticks(push: Callable[[Event], None], clock: WallClock, interval: float) -> None:
    """Pushes a ``CLOCK`` reading every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        push(clock_event(clock.now_ns()))
