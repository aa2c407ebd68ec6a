"""One input file of a run, read into events: ``load_source`` picks the reader from the file
(bars, quotes or trades in CSV/Parquet, a LOBSTER message file, a Databento MBO file) and
``ReadOptions`` carries how to read it (the ``admf backtest`` options ``--tz``,
``--session-close``, ``--columns``, ``--negative-prices``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np

from admf.data.bars import SESSION_CLOSE, ColumnMap
from admf.data.file import DataFile, DataPath, data_path
from admf.errors import AdmfError
from admf.events import EventArray, Flag, Kind, Side, empty_events


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How bar, quote and trade files are read (see ``admf.data.bars.load_market_data``)."""

    tz: str | None = None
    """Time zone of naive timestamps (UTC) and of daily dates (America/New_York) if None."""
    session_close: dt.time = SESSION_CLOSE
    """The wall-clock time daily bars are stamped at, on their trading date in ``tz``."""
    columns: ColumnMap | None = None
    """Which columns hold a bar's fields, for CSV files of no known format."""
    negative_prices: bool = False
    """Accept negative prices (spreads, some futures)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "tz": self.tz,
            "session_close": self.session_close.isoformat(),
            "columns": dataclasses.asdict(self.columns) if self.columns else None,
            "negative_prices": self.negative_prices,
        }

    def market_kwargs(self) -> dict[str, Any]:
        return {
            "tz": self.tz,
            "session_close": self.session_close,
            "columns": self.columns,
            "negative_prices": self.negative_prices,
        }


@dataclasses.dataclass
class Source:
    """One input file, read into events of one instrument. ``tick`` is set for book data
    (the instrument trades on the order book's simulated venue)."""

    path: str
    instrument: int
    name: str
    kind: Kind
    events: EventArray
    tick: int | None = None


def on_book(source: Source, tick: int) -> Source:
    """``source``, a quote file, traded on the book venue with prices on ``tick`` (fixed
    point): each quote is the venue's whole L1 book. Book data brings its own tick, and bars
    and trades are no book: both are refused."""
    if tick <= 0:
        raise AdmfError(f"{source.path}: a tick must be > 0, got {tick}")
    if source.tick is not None:
        raise AdmfError(f"{source.path}: book data brings its own tick; a tick is for quote files")
    if source.kind != Kind.QUOTE:
        raise AdmfError(
            f"{source.path}: {source.kind.name.lower()} data; only quote files trade on the "
            "book venue with a tick"
        )
    return dataclasses.replace(source, tick=tick)


def _is_lobster(p: DataPath) -> bool:
    return "_message_" in p.name and p.suffix == ".csv"


def _orderbook_name(p: DataPath) -> str:
    return p.name.replace("_message_", "_orderbook_")


def companions(path: str | os.PathLike[str]) -> list[Path]:
    """The files a data file is read with (a LOBSTER message file's orderbook file), for a
    reader that fetches the bytes itself (``DataFile.siblings``)."""
    p = Path(path)
    return [p.with_name(_orderbook_name(p))] if _is_lobster(p) else []


def _lobster_source(p: DataPath, instrument: int) -> Source:
    """A LOBSTER message file, with the book before its first message (from the orderbook
    file beside it) as anonymous size: ``BOOK_ADD`` records with order id 0."""
    from admf.data import lobster

    book_path = p.with_name(_orderbook_name(p))
    if not book_path.is_file():
        raise AdmfError(f"{p}: its LOBSTER orderbook file {book_path.name} is not beside it")
    day = lobster.read_day(p, book_path, instrument=instrument)
    # The deltas with the corrections that keep the book equal to every orderbook row (a
    # level-N file never shows what happens beyond its N levels), then the trades (hidden
    # and cross executions) in time order; halts are left out.
    deltas = lobster.consistent_deltas(day).events
    trades = day.events[day.events["kind"] == Kind.TRADE]
    events = np.concatenate([deltas, trades])
    events = events[np.argsort(events["ts"], kind="stable")]
    events["instrument"] = instrument  # the corrections are made without one
    seed = []
    for side in (Side.BUY, Side.SELL):
        for price, size in day.initial_levels(side):
            seed.append((int(side), price, size))
    head = empty_events(len(seed))
    if seed:
        head["ts"] = events["ts"][0]
        head["kind"] = Kind.BOOK_ADD
        head["instrument"] = instrument
        head["flags"] = Flag.SNAPSHOT
        head["side"] = [s for s, _, _ in seed]
        head["price"] = [price for _, price, _ in seed]
        head["qty"] = [size for _, _, size in seed]
    name = p.name.split("_")[0]
    return Source(
        str(p), instrument, name, Kind.BOOK_ADD, np.concatenate([head, events]), lobster.TICK
    )


def load_source(
    path: str | os.PathLike[str] | DataFile, instrument: int, read: ReadOptions | None = None
) -> Source:
    """Reads one data file into events: bars, quotes or trades (CSV/Parquet), a LOBSTER
    message file (with its orderbook file beside it) or a Databento MBO file (``.dbn``,
    ``.dbn.zst``). A ``DataFile`` is read from its bytes (its orderbook file from its
    siblings)."""
    from admf.data.bars import read_market_data

    p = data_path(path)
    if not p.is_file():
        raise AdmfError(f"no data file at {p}")
    if _is_lobster(p):
        return _lobster_source(p, instrument)
    if p.name.endswith((".dbn", ".dbn.zst")):
        from admf.data.databento import read_mbo

        events = read_mbo(p, instrument=instrument)
        return Source(str(p), instrument, p.name.split(".")[0], Kind.BOOK_ADD, events, 1)
    kind, events = read_market_data(
        p, instrument=instrument, **(read or ReadOptions()).market_kwargs()
    )
    name = p.name.split(".")[0]
    return Source(str(p), instrument, name, Kind(kind), events)
