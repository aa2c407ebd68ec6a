"""Databento DBN market-by-order (MBO) files as admf book deltas, decoded with the
``databento-dbn`` package.

DBN prices are fixed point with 1e9 units per whole, as admf's, so they carry over exactly;
sizes (contracts, shares) become fixed point. ``ts`` is the receive time ``ts_recv`` (the
order in which a client sees the feed). Actions map as in Databento's own book example:
``A`` add -> ``BOOK_ADD``; ``C`` cancel -> ``BOOK_CANCEL`` of the size canceled; ``M`` modify
-> ``BOOK_MODIFY`` with the new price and size; ``R`` clear -> ``BOOK_CLEAR`` (both sides).
Fills (``F``) do not change the book (the venue follows them with a cancel or modify) and are
dropped; trades (``T``) become ``TRADE`` records (side = aggressor) when asked for. DBN's
``F_LAST`` and ``F_SNAPSHOT`` flags become ``Flag.LAST`` and ``Flag.SNAPSHOT``.

Exact, or loud: a file that ends inside a zstd frame or inside a record (a truncated
download) is an ``AdmfError`` saying how many records were read, unless the caller asks for
the prefix (``truncated="warn"``: an ``AdmfWarning`` with the count); a corrupt zstd frame or
DBN header is an ``AdmfError``. A record whose price is beyond the accepted range
(``admf.data.checks.PRICE_LIMIT``; ``UNDEF_PRICE`` on a clear is not a price), whose size
does not fit fixed point, or whose order id does not fit 63 bits is refused, naming its
record number.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import databento_dbn as dbn
import numpy as np
import zstandard

from admf.book import BookError, OrderBook
from admf.data.checks import PRICE_LIMIT, QTY_LIMIT
from admf.data.file import DataFile, DataPath, data_path
from admf.errors import AdmfError, AdmfWarning
from admf.events import SCALE, EventArray, Flag, Kind, Side, empty_events

__all__ = ["CME_ES_TICK", "CrossedBookBuilder", "read_mbo"]

CME_ES_TICK = SCALE // 4
"""The tick of the CME E-mini S&P 500 future (0.25 index points)."""

_SIDES = {"B": Side.BUY, "A": Side.SELL, "N": Side.NONE}
_ACTIONS = {"A": Kind.BOOK_ADD, "C": Kind.BOOK_CANCEL, "M": Kind.BOOK_MODIFY, "R": Kind.BOOK_CLEAR}
_I64_MAX = 2**63 - 1


def _payload(path: DataPath) -> bytes:
    """The file's DBN bytes, decompressed; a truncated or corrupt zstd frame is an error."""
    data = path.read_bytes()
    if path.suffix != ".zst":
        return data
    parts: list[bytes] = []
    rest = data
    # Databento writes several frames; each one must end where its header says it does.
    while rest:
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        try:
            parts.append(decompressor.decompress(rest))
        except zstandard.ZstdError as exc:
            raise AdmfError(f"{path}: corrupt zstd data ({exc})") from None
        if not decompressor.eof:
            raise _Truncated(b"".join(parts), "ends inside a zstd frame")
        rest = decompressor.unused_data
    return b"".join(parts)


class _Truncated(Exception):
    def __init__(self, data: bytes, why: str) -> None:
        super().__init__(why)
        self.data = data
        self.why = why


def _decode(path: DataPath, data: bytes) -> tuple[list[object], int]:
    """The records of DBN bytes and the number of bytes left over (a partial record)."""
    decoder = dbn.DBNDecoder()
    try:
        decoder.write(data)
        records = decoder.decode()
    except (dbn.DBNError, RuntimeError, ValueError) as e:
        raise AdmfError(f"{path}: not a readable DBN file ({e})") from None
    return list(records), len(decoder.buffer())


def read_mbo(
    path: str | Path | DataFile,
    *,
    trades: bool = False,
    instrument: int | None = None,
    truncated: Literal["error", "warn"] = "error",
) -> EventArray:
    """Reads a DBN MBO file (zstd-compressed if its name ends in ``.zst``) into events.
    ``instrument`` overrides the file's instrument id; ``truncated="warn"`` reads the records
    of a truncated file with an ``AdmfWarning`` instead of refusing it."""
    path = data_path(path)
    if truncated not in ("error", "warn"):
        raise AdmfError(f"truncated must be 'error' or 'warn', got {truncated!r}")
    why = ""
    try:
        data = _payload(path)
    except _Truncated as cut:
        data, why = cut.data, cut.why
    records, left = _decode(path, data)
    if left and not why:
        why = f"ends inside a record ({left} bytes of it)"
    if why and not records:
        raise AdmfError(f"{path}: truncated: the file {why} before its metadata header ends")
    if not records or not isinstance(records[0], dbn.Metadata):
        raise AdmfError(f"{path}: not a DBN file (no metadata header)")
    if why:
        message = f"{path}: truncated: the file {why}; {len(records) - 1} whole records read"
        if truncated == "error":
            raise AdmfError(message + " (read_mbo(..., truncated='warn') reads them)")
        warnings.warn(message, AdmfWarning, stacklevel=2)
    rows: list[tuple[int, int, int, int, int, int, int, int]] = []
    max_size = QTY_LIMIT // SCALE
    for number, rec in enumerate(records):
        if not isinstance(rec, dbn.MBOMsg):
            continue
        action = str(rec.action)
        kind = _ACTIONS.get(action)
        if kind is None:
            if not (trades and action == "T"):
                continue
            kind = Kind.TRADE
        if action == "C" and rec.size == 0:
            continue  # a cancel of nothing
        side = _SIDES.get(str(rec.side), Side.NONE)
        price = 0 if rec.price == dbn.UNDEF_PRICE else rec.price
        where = f"{path}: record {number}"
        if rec.order_id > _I64_MAX:
            raise AdmfError(f"{where}: order id {rec.order_id} does not fit in 64 signed bits")
        if abs(price) > PRICE_LIMIT:
            raise AdmfError(f"{where}: price {price} is beyond the accepted range")
        if rec.size > max_size:
            raise AdmfError(f"{where}: size {rec.size} does not fit fixed point")
        flags = (Flag.LAST if rec.flags & dbn.F_LAST else 0) | (
            Flag.SNAPSHOT if rec.flags & dbn.F_SNAPSHOT else 0
        )
        ident = rec.instrument_id if instrument is None else instrument
        rows.append(
            (rec.ts_recv, rec.order_id, price, rec.size * SCALE, ident, kind, side, int(flags))
        )
    out = empty_events(len(rows))
    if rows:
        table = np.array(rows, dtype=np.int64)
        for j, name in enumerate(
            ("ts", "order_id", "price", "qty", "instrument", "kind", "side", "flags")
        ):
            out[name] = table[:, j]
    return out


class CrossedBookBuilder:
    """Builds an ``OrderBook`` from MBO deltas of a venue whose book can cross (CME during
    its pre-open: orders queue for the opening auction without matching), keeping the book
    itself never crossed.

    An order that would cross waits in ``held`` (order id -> (side, price, size, ts)) instead
    of the book; cancels and modifies of held orders apply there. After each delta, held
    orders that no longer cross join the book in arrival order. At the open, the venue's
    uncross sends the cancels and modifies that remove what traded, and the held orders
    drain. Every other refused delta raises ``BookError`` as usual.
    """

    def __init__(self, tick: int = CME_ES_TICK, instrument: int = 0) -> None:
        self.book = OrderBook(tick, instrument)
        self.held: dict[int, tuple[int, int, int, int]] = {}
        self.max_held = 0

    def _crosses(self, side: int, price: int) -> bool:
        bid, ask = self.book.bbo()
        if side == Side.BUY:
            return ask is not None and price >= ask
        return bid is not None and price <= bid

    def apply(self, ev: np.void) -> None:
        """Applies one delta record."""
        kind, oid = int(ev["kind"]), int(ev["order_id"])
        side, price, qty, ts = int(ev["side"]), int(ev["price"]), int(ev["qty"]), int(ev["ts"])
        held = self.held
        if kind == Kind.BOOK_ADD:
            if self._crosses(side, price):
                if oid in held or oid in self.book:
                    raise BookError(f"order {oid}: duplicate order id")
                held[oid] = (side, price, qty, ts)
                self.max_held = max(self.max_held, len(held))
                return
            self.book.add(oid, side, price, qty, ts)
        elif kind == Kind.BOOK_CANCEL and oid in held:
            hs, hp, hq, hts = held[oid]
            if qty >= hq:
                del held[oid]
            else:
                held[oid] = (hs, hp, hq - qty, hts)
        elif kind == Kind.BOOK_MODIFY and oid in held:
            hs, _, _, hts = held[oid]
            held[oid] = (hs, price, qty, hts)
        elif kind == Kind.BOOK_MODIFY and oid in self.book and self._crosses(side, price):
            self.book.cancel(oid)
            held[oid] = (side, price, qty, ts)
            self.max_held = max(self.max_held, len(held))
            return
        elif kind == Kind.BOOK_CLEAR:
            self.book.clear(side)
            for key in [k for k, v in held.items() if side == Side.NONE or v[0] == side]:
                del held[key]
        else:
            self.book.apply_delta(kind, oid, side, price, qty, ts)
        if held:
            self._release()

    def _release(self) -> None:
        for oid, (side, price, qty, ts) in list(self.held.items()):
            if not self._crosses(side, price):
                del self.held[oid]
                self.book.add(oid, side, price, qty, ts)

    def apply_all(self, events: EventArray) -> None:
        """Applies book deltas in order (other kinds are skipped)."""
        for ev in events:
            if int(ev["kind"]) in _ACTIONS.values():
                self.apply(ev)
