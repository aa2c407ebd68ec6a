"""Synthetic one-minute FX bars for the order-heavy benchmark: a seeded random walk, so every
run (and every machine) sees the same bars.

EUR/USD-like: starts at 1.10000, a 1e-5 tick, a geometric random walk with about one pip of
volatility per minute, four steps per bar giving its high and low, bars back to back from
2024-01-01 00:01 UTC (stamped at their close).
"""

from __future__ import annotations

import numpy as np

from admf.events import SCALE, EventArray, Kind, empty_events

TICK_FX = SCALE // 100_000
START_NS = 1_704_067_260_000_000_000  # 2024-01-01 00:01 UTC
MINUTE_NS = 60_000_000_000
STEPS = 4


def fx_minute_bars(n: int, seed: int = 42, instrument: int = 1) -> EventArray:
    """``n`` bars of instrument ``instrument``, the same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    path = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 1e-4 / np.sqrt(STEPS), n * STEPS)))
    ticks = np.round(path / (TICK_FX / SCALE)).astype(np.int64).reshape(n, STEPS)
    close = ticks[:, -1]
    open_ = np.concatenate([[110_000], close[:-1]])  # 1.10000 in ticks
    high = np.maximum(open_, ticks.max(axis=1))
    low = np.minimum(open_, ticks.min(axis=1))
    bars = empty_events(n)
    bars["ts"] = START_NS + MINUTE_NS * np.arange(n, dtype=np.int64)
    bars["kind"] = Kind.BAR
    bars["instrument"] = instrument
    bars["price"] = close * TICK_FX
    bars["aux"] = open_ * TICK_FX
    bars["order_id"] = high * TICK_FX
    bars["payload"] = low * TICK_FX
    bars["qty"] = rng.integers(1, 100, n) * 1_000 * SCALE
    return bars
