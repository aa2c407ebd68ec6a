"""The market the exchange replays: its symbols and one time-ordered stream of their events.

Each data file is one symbol (read by ``admf.backtest.load_source``, so the exchange takes
every format a backtest takes). The files' events are merged by (ts, file, row), as the
kernel merges sources, and played from the first to the last; the exchange's clock is the
time of the last event played.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path
from typing import NamedTuple

import numpy as np

from admf.backtest import load_source
from admf.errors import AdmfError
from admf.events import EventArray, Kind, empty_events
from admf.exchange.wire import rfc3339

_SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9]*")


@dataclasses.dataclass
class Instrument:
    """A tradable symbol and its data."""

    symbol: str
    number: int
    """The ``instrument`` of its admf events."""
    kind: Kind
    """BAR, QUOTE, TRADE, or BOOK_ADD for order-by-order book data."""
    asset_id: str
    path: str
    events: EventArray
    tick: int | None
    interval_ns: int
    """Bars: the bar interval (a bar's open is ``ts - interval_ns``); else 0."""

    @property
    def is_book(self) -> bool:
        return self.kind in (Kind.QUOTE, Kind.BOOK_ADD)


def default_symbol(path: str) -> str:
    """The first word of a file's name, upper case: ``orcl-1995.csv`` -> ``ORCL``; a prefix
    ending in ``__`` (the bundled samples' source) is skipped."""
    name = Path(path).name.split("__")[-1]
    match = _SYMBOL.search(name)
    if match is None:
        raise AdmfError(f"{path}: no symbol in the file name; give one as SYMBOL=PATH")
    return match.group(0).upper()


def load_instruments(
    files: list[tuple[str | None, str]], asset_ids: list[uuid.UUID]
) -> list[Instrument]:
    instruments: list[Instrument] = []
    seen: set[str] = set()
    for i, ((symbol, path), asset_id) in enumerate(zip(files, asset_ids, strict=True)):
        source = load_source(path, i + 1)
        sym = symbol or default_symbol(path)
        if sym in seen:
            raise AdmfError(f"{path}: symbol {sym} is already taken; give one as SYMBOL=PATH")
        seen.add(sym)
        events = source.events
        if not len(events):
            raise AdmfError(f"{path}: holds no events")
        interval = 0
        if source.kind == Kind.BAR and len(events) > 1:
            gaps = np.diff(events["ts"])
            interval = int(gaps[gaps > 0].min()) if (gaps > 0).any() else 0
        instruments.append(
            Instrument(
                sym,
                i + 1,
                Kind(source.kind),
                str(asset_id),
                path,
                events,
                source.tick
                if source.tick is not None
                else (1 if source.kind == Kind.QUOTE else None),
                interval,
            )
        )
    return instruments


def merge(instruments: list[Instrument]) -> EventArray:
    """Every instrument's events in one array, ordered by (ts, instrument, row)."""
    if not instruments:
        return empty_events(0)
    events = np.concatenate([i.events for i in instruments])
    rows = np.concatenate([np.arange(len(i.events)) for i in instruments])
    order = np.lexsort((rows, events["instrument"], events["ts"]))
    merged: EventArray = events[order]
    return merged


class TradingDay(NamedTuple):
    """A day of the calendar: its UTC date and the times of its first and last market
    event (a daily bar's day gets the regular session's hours)."""

    date: str
    open_ns: int
    close_ns: int


_DAY_NS = 86_400 * 10**9
_REGULAR_OPEN_NS = (13 * 60 + 30) * 60 * 10**9  # 09:30 in New York (EST), in UTC
_REGULAR_CLOSE_NS = 20 * 3600 * 10**9  # 16:00 in New York (EST), in UTC


def trading_days(instruments: list[Instrument]) -> list[TradingDay]:
    """The calendar of the data: each UTC date with events (bars at their open)."""
    spans: dict[int, tuple[int, int]] = {}
    for inst in instruments:
        ts = inst.events["ts"] - inst.interval_ns  # in time order
        dates = ts // _DAY_NS
        days, first = np.unique(dates, return_index=True)
        last = np.append(first[1:], len(ts)) - 1
        for day, lo_i, hi_i in zip(days.tolist(), first.tolist(), last.tolist(), strict=True):
            if inst.interval_ns >= _DAY_NS:
                lo, hi = day * _DAY_NS + _REGULAR_OPEN_NS, day * _DAY_NS + _REGULAR_CLOSE_NS
            else:
                lo, hi = int(ts[lo_i]), int(ts[hi_i])
            old = spans.get(day)
            spans[day] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return [TradingDay(rfc3339(d * _DAY_NS)[:10], lo, hi) for d, (lo, hi) in sorted(spans.items())]
