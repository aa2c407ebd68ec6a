"""Alpaca's request budget: ``limit`` requests per minute per account (Alpaca: 200), off
unless asked for. Every answered request carries ``X-Ratelimit-Limit``,
``X-Ratelimit-Remaining`` and ``X-Ratelimit-Reset`` (epoch seconds of the next window);
beyond the budget the answer is 429 ``{"code": 42910000, "message": "rate limit
exceeded"}``. Windows are whole wall-clock minutes: a rate limit is about the client's real
request rate, not the replayed market's time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

_WINDOW_SECONDS = 60


class Budget(NamedTuple):
    """One request's standing: allowed or not, what is left, when the window resets."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Ratelimit-Limit": str(self.limit),
            "X-Ratelimit-Remaining": str(self.remaining),
            "X-Ratelimit-Reset": str(self.reset),
        }


class RateLimiter:
    """Counts requests per key in fixed one-minute windows."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.clock = clock
        self._windows: dict[str, tuple[int, int]] = {}  # key -> (window start, used)

    def take(self, key: str) -> Budget:
        now = int(self.clock())
        start = now - now % _WINDOW_SECONDS
        window, used = self._windows.get(key, (start, 0))
        if window != start:
            window, used = start, 0
        allowed = used < self.limit
        if allowed:
            used += 1
        self._windows[key] = (window, used)
        return Budget(allowed, self.limit, self.limit - used, window + _WINDOW_SECONDS)
