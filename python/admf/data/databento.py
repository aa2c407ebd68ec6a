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
"""

from __future__ import annotations

from pathlib import Path

import databento_dbn as dbn
import numpy as np

from admf.book import BookError, OrderBook
from admf.errors import AdmfError
from admf.events import SCALE, EventArray, Flag, Kind, Side, empty_events

__all__ = ["CME_ES_TICK", "CrossedBookBuilder", "read_mbo"]

CME_ES_TICK = SCALE // 4
"""The tick of the CME E-mini S&P 500 future (0.25 index points)."""

_SIDES = {"B": Side.BUY, "A": Side.SELL, "N": Side.NONE}
_ACTIONS = {"A": Kind.BOOK_ADD, "C": Kind.BOOK_CANCEL, "M": Kind.BOOK_MODIFY, "R": Kind.BOOK_CLEAR}
_I64_MAX = 2**63 - 1


def read_mbo(
    path: str | Path, *, trades: bool = False, instrument: int | None = None
) -> EventArray:
    """Reads a DBN MBO file (zstd-compressed if its name ends in ``.zst``) into events.
    ``instrument`` overrides the file's instrument id."""
    path = Path(path)
    compression = dbn.Compression("zstd" if path.suffix == ".zst" else "none")
    decoder = dbn.DBNDecoder(compression=compression)
    try:
        decoder.write(path.read_bytes())
        records = decoder.decode()
    except dbn.DBNError as e:
        raise AdmfError(f"{path}: not a readable DBN file ({e})") from None
    rows: list[tuple[int, int, int, int, int, int, int, int]] = []
    for rec in records:
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
        if rec.order_id > _I64_MAX:
            raise AdmfError(f"{path}: order id {rec.order_id} does not fit in 64 signed bits")
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
