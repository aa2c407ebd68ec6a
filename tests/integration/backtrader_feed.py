"""Feeding the same bars to backtrader and admf: an in-memory backtrader feed of event arrays."""

from __future__ import annotations

import datetime
from typing import Any

import backtrader as bt
import numpy as np

from admf.events import SCALE, EventArray


class EventBarsFeed(bt.feed.DataBase):  # type: ignore[misc]
    """Bars from an admf event array (the bar's open time as its datetime)."""

    params = (("events", None), ("interval_ns", 60_000_000_000))

    def start(self) -> None:
        super().start()
        events: EventArray = self.p.events
        open_ns = events["ts"] - self.p.interval_ns
        base = datetime.datetime(1970, 1, 1)
        self._rows = list(
            zip(
                [
                    bt.date2num(base + datetime.timedelta(microseconds=int(t) // 1000))
                    for t in open_ns
                ],
                (events["aux"] / SCALE).tolist(),
                (events["order_id"] / SCALE).tolist(),
                (events["payload"] / SCALE).tolist(),
                (events["price"] / SCALE).tolist(),
                (events["qty"] / SCALE).tolist(),
                strict=True,
            )
        )
        self._i = 0

    def _load(self) -> bool:
        if self._i >= len(self._rows):
            return False
        dt, o, h, low, c, v = self._rows[self._i]
        self._i += 1
        lines: Any = self.lines
        lines.datetime[0] = dt
        lines.open[0], lines.high[0], lines.low[0], lines.close[0] = o, h, low, c
        lines.volume[0] = v
        lines.openinterest[0] = 0.0
        return True


def minute_bars(n: int, path: str) -> EventArray:
    """``n`` one-minute bars: the real bars of ``path`` repeated back to back in time."""
    from admf.data.bars import read_bars

    bars = read_bars(path, instrument=1)
    span = int(bars["ts"][-1] - bars["ts"][0]) + 60_000_000_000
    copies = n // len(bars) + 1
    out = np.concatenate([bars] * copies)[:n].copy()
    out["ts"] = np.concatenate([bars["ts"] + k * span for k in range(copies)])[:n]
    return out
