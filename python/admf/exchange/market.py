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

import numpy as np

from admf.backtest import load_source
from admf.errors import AdmfError
from admf.events import EventArray, Kind, empty_events

_SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_BOOK_KINDS = (
    Kind.BOOK_ADD,
    Kind.BOOK_CANCEL,
    Kind.BOOK_MODIFY,
    Kind.BOOK_EXECUTE,
    Kind.BOOK_CLEAR,
)


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


def book_kinds() -> tuple[Kind, ...]:
    return _BOOK_KINDS
