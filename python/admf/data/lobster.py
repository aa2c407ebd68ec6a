"""LOBSTER (lobsterdata.com) NASDAQ order-book files as admf book deltas.

A LOBSTER day is a pair of CSV files without header, named
``TICKER_YYYY-MM-DD_START_END_{message,orderbook}_LEVELS.csv``:

- message file, six columns: time (seconds after midnight, New York time, up to ns), type
  (1 new limit order, 2 partial cancel, 3 full delete, 4 visible execution, 5 hidden
  execution, 6 cross trade, 7 trading halt), order id, size (shares), price (USD x 10,000),
  direction (1 buy, -1 sell; for executions the side of the resting order);
- orderbook file: row k is the book after message k, ``AskPrice1, AskSize1, BidPrice1,
  BidSize1, AskPrice2, ...``; empty levels hold 9999999999 / -9999999999 with size 0.

Prices become fixed point exactly (USD x 10,000 times 100,000 = USD x 1e9), sizes are whole
shares in fixed point, times become nanoseconds since the Unix epoch (UTC) from the date in
the file name and the New York time zone. Types 1-4 are book deltas (``BOOK_ADD``,
``BOOK_CANCEL`` with the size canceled, ``BOOK_EXECUTE``); hidden executions and cross
trades (5, 6) are ``TRADE`` records (side = the aggressor's); halts (7) are ``NONE``
records, kept so that event k still matches orderbook row k. Orders resting before the file
starts are never announced: start a book from the first row with ``seed_book``, whose size
belongs to no known order (``OrderBook.add_anonymous``). ``consistent_deltas`` adds the
corrections that keep such a book equal to every row (levels revealed from beyond the file's
depth, orders canceled while out of view).

Exact, or loud: every message is checked before it becomes fixed point, and a bad one is an
``AdmfError`` naming the file, the line, the column and the value: a time outside the day
(0 to 86,400 s), an order id outside 0..2^63-1, a size that is not positive (types 1-6) or
that fixed point cannot hold, a price that is not positive (types 1-6), beyond the accepted
range (``admf.data.checks.PRICE_LIMIT``) or, for book messages (types 1-4), off the tick
(``tick=``, default ``TICK``, one cent), an unknown type or direction, and an empty file.
The orderbook file is checked the same way (sizes >= 0, prices in range). Nothing is dropped
without a word: the only messages ``consistent_deltas`` leaves out are those that refer to
orders or sizes the file never showed (resting before it starts or beyond its depth), which
it counts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from admf.book import BookError, OrderBook
from admf.data.checks import PRICE_LIMIT, QTY_LIMIT
from admf.data.file import DataFile, DataPath, data_path
from admf.errors import AdmfError
from admf.events import SCALE, EventArray, Flag, Kind, Side, empty_events

__all__ = [
    "PRICE_FACTOR",
    "TICK",
    "Deltas",
    "LobsterDay",
    "OrderbookRows",
    "book_deltas",
    "consistent_deltas",
    "read_day",
    "read_messages",
    "read_orderbook",
    "seed_book",
]

PRICE_FACTOR = SCALE // 10_000
"""Fixed-point units per LOBSTER price unit (1/10,000 USD)."""

TICK = SCALE // 100
"""One cent, the tick of the NASDAQ stocks in the LOBSTER samples."""

_EMPTY_ASK = 9_999_999_999
_NAME = re.compile(r"(?P<ticker>[^_/\\]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_(message|orderbook)_")
_NEW_YORK = ZoneInfo("America/New_York")

# LOBSTER message type -> event kind (index 0 unused).
_KIND_OF_TYPE = (
    Kind.NONE,
    Kind.BOOK_ADD,
    Kind.BOOK_CANCEL,
    Kind.BOOK_CANCEL,
    Kind.BOOK_EXECUTE,
    Kind.TRADE,
    Kind.TRADE,
    Kind.NONE,
)

_BOOK_KINDS = np.array(
    [Kind.BOOK_ADD, Kind.BOOK_CANCEL, Kind.BOOK_MODIFY, Kind.BOOK_EXECUTE, Kind.BOOK_CLEAR],
    dtype=np.uint8,
)


def _midnight_ns(path: DataPath) -> int:
    match = _NAME.search(path.name)
    if match is None:
        raise AdmfError(
            f"{path}: cannot find the date in the file name; expected LOBSTER's "
            "TICKER_YYYY-MM-DD_START_END_message_LEVELS.csv"
        )
    day = dt.date.fromisoformat(match["date"])
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=_NEW_YORK)
    return int(midnight.timestamp()) * 1_000_000_000


_DAY_SECONDS = 86_400
_MAX_SIZE = QTY_LIMIT // SCALE
_MAX_PRICE = PRICE_LIMIT // PRICE_FACTOR
_COLUMNS = ("time", "type", "order id", "size", "price", "direction")


def _seconds_to_ns(text: str, path: DataPath, line: int) -> int:
    whole, _, frac = text.strip().partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > 9:
        raise AdmfError(
            f"{path}:{line}: column 'time': {text!r} is not seconds after midnight with at most "
            "9 decimals"
        )
    if int(whole) >= _DAY_SECONDS:
        raise AdmfError(
            f"{path}:{line}: column 'time': {text!r} is not within the day (0 to 86400 s)"
        )
    return int(whole) * 1_000_000_000 + int(frac.ljust(9, "0") or 0)


def _check_message(path: DataPath, line: int, values: list[int], tick_units: int) -> None:
    """One message's integers (type, order id, size, price, direction), before fixed point."""
    code, order_id, size, price, direction = values

    def bad(column: int, why: str) -> AdmfError:
        return AdmfError(f"{path}:{line}: column {_COLUMNS[column]!r}: {values[column - 1]} {why}")

    if not 1 <= code <= 7:
        raise bad(1, "is not a message type 1 to 7")
    if direction not in (1, -1):
        raise bad(5, "is not a direction 1 (buy) or -1 (sell)")
    if not 0 <= order_id <= 2**63 - 1:
        raise bad(2, "is not an order id in 0..2^63-1")
    if code == 7:
        # A halt: size 0, and the price is a code (-1 halted, 0 quoting, 1 trading resumes).
        if size != 0:
            raise bad(3, "is not 0, the size of a trading halt message (type 7)")
        if price not in (-1, 0, 1):
            raise bad(4, "is not -1, 0 or 1, the codes of a trading halt message (type 7)")
        return
    if not 0 < size <= _MAX_SIZE:
        raise bad(3, f"is not a size in 1..{_MAX_SIZE} shares")
    if not 0 < price <= _MAX_PRICE:
        raise bad(4, f"is not a price in 1..{_MAX_PRICE} (USD x 10,000)")
    if code <= 4 and price % tick_units:
        raise bad(4, f"is off the tick ({tick_units} in USD x 10,000)")


def read_messages(
    path: str | Path | DataFile, *, instrument: int = 0, tick: int = TICK
) -> EventArray:
    """One event per message line (see the module docstring for the mapping and what is
    refused); ``tick`` (fixed point, default one cent) is the price grid of book messages
    (a sub-penny stock: ``SCALE // 10_000``)."""
    path = data_path(path)
    if tick <= 0 or tick % PRICE_FACTOR:
        raise AdmfError(f"tick must be a positive multiple of {PRICE_FACTOR} (1/10,000 USD)")
    base = _midnight_ns(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines:
        raise AdmfError(f"{path}: no messages (an empty LOBSTER message file)")
    times: list[int] = []
    numbers: list[list[int]] = []
    for i, line in enumerate(lines):
        cols = line.split(",")
        if len(cols) != 6:
            raise AdmfError(
                f"{path}:{i + 1}: expected 6 columns (time, type, order id, size, price, "
                f"direction), got {len(cols)}"
            )
        times.append(_seconds_to_ns(cols[0], path, i + 1))
        try:
            values = [int(c) for c in cols[1:]]
        except ValueError:
            raise AdmfError(f"{path}:{i + 1}: expected integers after the time: {line!r}") from None
        _check_message(path, i + 1, values, tick // PRICE_FACTOR)
        numbers.append(values)
    table = np.array(numbers, dtype=np.int64).reshape(-1, 5)
    code, order_id, size, price, direction = table.T
    side = np.where(direction == 1, Side.BUY, Side.SELL).astype(np.uint8)
    kind = np.array(_KIND_OF_TYPE, dtype=np.uint8)[code]
    trade = kind == Kind.TRADE
    side[trade] = np.where(side[trade] == Side.BUY, Side.SELL, Side.BUY)
    out = empty_events(len(lines))
    out["ts"] = base + np.array(times, dtype=np.int64)
    out["instrument"] = instrument
    out["order_id"] = order_id
    out["price"] = price * PRICE_FACTOR
    out["qty"] = size * SCALE
    out["side"] = side
    out["kind"] = kind
    return out


@dataclass(frozen=True)
class OrderbookRows:
    """The orderbook file: ``(rows, levels)`` int64 arrays in fixed point. An empty level has
    price 0 and size 0."""

    ask_price: npt.NDArray[np.int64]
    ask_size: npt.NDArray[np.int64]
    bid_price: npt.NDArray[np.int64]
    bid_size: npt.NDArray[np.int64]

    @property
    def levels(self) -> int:
        return int(self.ask_price.shape[1])

    def __len__(self) -> int:
        return int(self.ask_price.shape[0])

    def side(self, k: int, side: Side) -> list[tuple[int, int]]:
        """Row ``k``'s non-empty levels of one side, best first, as (price, size)."""
        price, size = (
            (self.bid_price, self.bid_size) if side == Side.BUY else (self.ask_price, self.ask_size)
        )
        return [(int(p), int(s)) for p, s in zip(price[k], size[k], strict=True) if s > 0]


def _orderbook_error(path: DataPath, exc: Exception) -> AdmfError:
    """The line and field of the first value ``np.loadtxt`` could not read."""
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            for column, field in enumerate(line.strip().split(",")):
                try:
                    value = int(field)
                except ValueError:
                    return AdmfError(
                        f"{path}:{number}: field {column + 1}: {field!r} is not an integer"
                    )
                if not -(2**63) <= value < 2**63:
                    return AdmfError(
                        f"{path}:{number}: field {column + 1}: {field} does not fit in 64 bits"
                    )
    return AdmfError(f"{path}: not a LOBSTER orderbook file: {str(exc).splitlines()[0]}")


def read_orderbook(path: str | Path | DataFile) -> OrderbookRows:
    """Reads an orderbook file (see the module docstring for what is refused)."""
    path = data_path(path)
    try:
        with path.open(encoding="utf-8-sig") as f:
            raw = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (ValueError, OverflowError) as exc:
        raise _orderbook_error(path, exc) from None
    if raw.size == 0:
        raise AdmfError(f"{path}: no rows (an empty LOBSTER orderbook file)")
    if raw.shape[1] % 4:
        raise AdmfError(
            f"{path}: expected 4 columns per level (ask price, ask size, bid price, bid size), "
            f"got {raw.shape[1]}"
        )
    ask_p, ask_s, bid_p, bid_s = (raw[:, i::4].copy() for i in range(4))
    ask_empty = (ask_p >= _EMPTY_ASK) | (ask_s == 0)
    bid_empty = (bid_p <= -_EMPTY_ASK) | (bid_s == 0)
    for name, offset, values, bad in (
        ("size", 1, ask_s, (ask_s < 0) | (ask_s > _MAX_SIZE)),
        ("size", 3, bid_s, (bid_s < 0) | (bid_s > _MAX_SIZE)),
        ("price", 0, ask_p, ~ask_empty & ((ask_p <= 0) | (ask_p > _MAX_PRICE))),
        ("price", 2, bid_p, ~bid_empty & ((bid_p <= 0) | (bid_p > _MAX_PRICE))),
    ):
        if bad.any():
            row, level = (int(x) for x in np.argwhere(bad)[0])
            raise AdmfError(
                f"{path}:{row + 1}: field {4 * level + offset + 1}: {name} "
                f"{int(values[row, level])} is out of range"
            )
    ask_p = np.where(ask_empty, 0, ask_p * PRICE_FACTOR)
    bid_p = np.where(bid_empty, 0, bid_p * PRICE_FACTOR)
    ask_s = np.where(ask_empty, 0, ask_s * SCALE)
    bid_s = np.where(bid_empty, 0, bid_s * SCALE)
    return OrderbookRows(ask_p, ask_s, bid_p, bid_s)


def book_deltas(events: EventArray) -> EventArray:
    """The book deltas among ``events`` (drops trades and halts)."""
    return events[np.isin(events["kind"], _BOOK_KINDS)]


def seed_book(
    book: OrderBook, levels: list[tuple[int, int]], side: Side, *, skip_known: bool = True
) -> None:
    """Adds a side's levels (price, size) as anonymous size; with ``skip_known`` only the size
    the book does not already hold at each price."""
    for price, size in levels:
        extra = size - (book.size_at(side, price) if skip_known else 0)
        if extra > 0:
            book.add_anonymous(side, price, extra)


@dataclass(frozen=True)
class LobsterDay:
    """A message file with its orderbook file: ``events[k]`` and row ``k`` of ``rows`` belong
    together."""

    events: EventArray
    rows: OrderbookRows

    def initial_levels(self, side: Side) -> list[tuple[int, int]]:
        """The book of one side before the first message: the first row with that message
        undone."""
        levels = dict(self.rows.side(0, side))
        first = self.events[0]
        if int(first["side"]) == side and int(first["kind"]) != Kind.TRADE:
            price, qty = int(first["price"]), int(first["qty"])
            delta = -qty if int(first["kind"]) == Kind.BOOK_ADD else qty
            if int(first["kind"]) != Kind.NONE:
                levels[price] = levels.get(price, 0) + delta
        ordered = sorted(levels.items(), reverse=side == Side.BUY)
        return [(p, s) for p, s in ordered if s > 0]

    def seeded_book(self, *, tick: int = TICK, instrument: int = 0) -> OrderBook:
        """A book holding what rested before the first message, as anonymous size."""
        book = OrderBook(tick, instrument)
        for side in (Side.BUY, Side.SELL):
            seed_book(book, self.initial_levels(side), side)
        return book


def read_day(
    message_path: str | Path | DataFile,
    orderbook_path: str | Path | DataFile,
    *,
    instrument: int = 0,
    tick: int = TICK,
) -> LobsterDay:
    """Reads a message file and its orderbook file; checks they have the same length."""
    events = read_messages(message_path, instrument=instrument, tick=tick)
    rows = read_orderbook(orderbook_path)
    if len(rows) != len(events):
        raise AdmfError(
            f"{orderbook_path} has {len(rows)} rows but {message_path} has {len(events)} "
            "messages; expected one row per message"
        )
    return LobsterDay(events, rows)


def _window(levels: list[tuple[int, int]], depth: int, side: Side) -> int | None:
    """The worst price a row shows for a side, or None when it shows fewer levels than the
    file's depth (then it shows the whole side)."""
    if len(levels) < depth:
        return None
    return levels[-1][0]


def _within(side: Side, price: int, edge: int | None) -> bool:
    return edge is None or (price >= edge if side == Side.BUY else price <= edge)


def _correction(kind: Kind, ts: int, order_id: int, side: Side, price: int, qty: int) -> np.void:
    rec: np.void = empty_events(1)[0]
    rec["kind"], rec["ts"], rec["order_id"] = kind, ts, order_id
    rec["side"], rec["price"], rec["qty"] = side, price, qty
    rec["flags"] = Flag.SNAPSHOT
    return rec


class Deltas(NamedTuple):
    """What ``consistent_deltas`` made of a day."""

    events: EventArray
    ends: npt.NDArray[np.int64]
    """Per message, the index in ``events`` just past its events."""
    unknown: int
    """Messages left out because they refer to an order (or size) the file never showed."""


def consistent_deltas(day: LobsterDay, *, tick: int = TICK) -> Deltas:
    """The day's book deltas with corrections spliced in, so that a book started with
    ``day.seeded_book()`` equals every orderbook row within the file's depth after each
    message, and no delta is refused.

    A level-N file reports only what happens within the best N levels: a level that vanishes
    reveals one whose orders were never announced, and orders canceled while out of view
    come back as stale. After each message the rows are taken as the truth within their
    depth: missing size is added as anonymous size (``BOOK_ADD`` with order id 0), excess
    size is canceled (anonymous first, then the newest orders), all flagged
    ``Flag.SNAPSHOT``; a message the book refuses because it refers to an order (or size) the
    file never showed is left out and counted (``Deltas.unknown``)."""
    book = day.seeded_book(tick=tick)
    depth = day.rows.levels
    out: list[np.void] = []
    ends = np.empty(len(day.events), dtype=np.int64)
    unknown = 0
    book_kinds = set(int(k) for k in _BOOK_KINDS)
    for k, ev in enumerate(day.events):
        ts = int(ev["ts"])
        if int(ev["kind"]) in book_kinds:
            try:
                book.apply_batch(day.events[k : k + 1])
                out.append(ev)
            except BookError:
                # An order the file never showed, or whose size changed out of view (the
                # values themselves were checked when read): the row below repairs its level.
                unknown += 1
        rows = {side: day.rows.side(k, side) for side in (Side.BUY, Side.SELL)}
        missing: list[tuple[Side, int, int]] = []
        for side, row in rows.items():
            edge = _window(row, depth, side)
            want = dict(row)
            n = 2 * depth + 2
            levels = book.depth(side, n)
            while len(levels) == n and _within(side, levels[-1][0], edge):
                n *= 4
                levels = book.depth(side, n)
            have = {p: q for p, q, _ in levels if _within(side, p, edge)}
            for price in sorted(set(want) | set(have)):
                extra = have.get(price, 0) - want.get(price, 0)
                if extra < 0:
                    missing.append((side, price, -extra))
                    continue
                anon = min(extra, book.anonymous_at(side, price))
                if anon:
                    book.reduce_anonymous(side, price, anon)
                    out.append(_correction(Kind.BOOK_CANCEL, ts, 0, side, price, anon))
                    extra -= anon
                for order_id, qty in reversed(book.queue(side, price)):
                    if extra <= 0:
                        break
                    take = min(qty, extra)
                    book.reduce(order_id, take)
                    out.append(_correction(Kind.BOOK_CANCEL, ts, order_id, side, price, take))
                    extra -= take
        for side, price, qty in missing:
            book.add_anonymous(side, price, qty)
            out.append(_correction(Kind.BOOK_ADD, ts, 0, side, price, qty))
        ends[k] = len(out)
    events = empty_events(len(out))
    for i, rec in enumerate(out):
        events[i] = rec
    return Deltas(events, ends, unknown)
