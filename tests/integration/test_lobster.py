"""The book replayed on real NASDAQ data: AAPL, 2012-06-21, the first 999 LOBSTER messages
with their 10-level orderbook rows (tests/data/lobster, see tests/data/lobster/README.md).

A 10-level file reports only what happens within the best 10 levels, so the book knows a
price exactly only while it has stayed within them: per side a frontier marks the worst
price the book knows. After every message the book's levels up to the frontier must equal
the file's row. When a level vanishes the row reveals a level beyond the frontier; the test
then takes the revealed levels from the row (as anonymous size, since their orders were
never announced) and moves the frontier out.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from admf import SCALE, BookError, Flag, Kind, OrderBook, Side, SimVenue
from admf.data import lobster

DATA = Path(__file__).resolve().parents[1] / "data" / "lobster"
MESSAGES = DATA / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
ORDERBOOK = DATA / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
INF = 2**62


@pytest.fixture(scope="module")
def day() -> lobster.LobsterDay:
    return lobster.read_day(MESSAGES, ORDERBOOK)


def _better_or_equal(side: Side, price: int, frontier: int) -> bool:
    """Whether ``price`` is at or inside ``frontier`` (the book knows it)."""
    return price >= frontier if side == Side.BUY else price <= frontier


def _window_edge(levels: list[tuple[int, int]], depth: int, side: Side) -> int:
    """The worst price the row shows, or past everything when the side shows fewer levels
    than the file's depth (then the row is the whole side)."""
    if len(levels) < depth:
        return -INF if side == Side.BUY else INF
    return levels[-1][0]


def _known(book: OrderBook, side: Side, frontier: int) -> list[tuple[int, int]]:
    return [(p, q) for p, q, _ in book.depth(side, 10_000) if _better_or_equal(side, p, frontier)]


def _set_level(book: OrderBook, side: Side, price: int, size: int) -> None:
    """Makes the book's size at ``price`` equal ``size``: stale orders (canceled while out of
    view) go newest first, then anonymous size makes up the rest."""
    anon = book.anonymous_at(side, price)
    if anon:
        book.reduce_anonymous(side, price, anon)
    for order_id, qty in reversed(book.queue(side, price)):
        if book.size_at(side, price) <= size:
            break
        book.reduce(order_id, min(qty, book.size_at(side, price) - size))
    missing = size - book.size_at(side, price)
    if missing > 0:
        book.add_anonymous(side, price, missing)


def _reveal(book: OrderBook, side: Side, row: list[tuple[int, int]], old: int, new: int) -> None:
    """Takes the row's levels between the old and the new frontier into the book."""
    shown = dict(row)
    stale = [
        p
        for p, _, _ in book.depth(side, 10_000)
        if not _better_or_equal(side, p, old) and _better_or_equal(side, p, new)
    ]
    for price in sorted(set(stale) | {p for p in shown if not _better_or_equal(side, p, old)}):
        if _better_or_equal(side, price, new):
            _set_level(book, side, price, shown.get(price, 0))


def test_replay_matches_every_orderbook_row(day: lobster.LobsterDay) -> None:
    book = day.seeded_book()
    depth = day.rows.levels
    frontier = {
        side: _window_edge(day.initial_levels(side), depth, side) for side in (Side.BUY, Side.SELL)
    }
    checked_levels = executions = 0
    for k, ev in enumerate(day.events):
        kind = int(ev["kind"])
        if kind == Kind.BOOK_EXECUTE and int(ev["order_id"]) in book:
            side, price = Side(int(ev["side"])), int(ev["price"])
            # Every visible execution hits the oldest known order at its price.
            assert book.queue(side, price)[0][0] == int(ev["order_id"]), f"message {k + 1}"
            executions += 1
        if kind not in (Kind.TRADE, Kind.NONE):
            book.apply_batch(day.events[k : k + 1])
        book.check_invariants()
        for side in (Side.BUY, Side.SELL):
            row = day.rows.side(k, side)
            edge = _window_edge(row, depth, side)
            want = [(p, q) for p, q in row if _better_or_equal(side, p, frontier[side])]
            got = [
                (p, q)
                for p, q in _known(book, side, frontier[side])
                if _better_or_equal(side, p, edge)
            ]
            assert got == want, f"row {k + 1}, {side.name}"
            checked_levels += len(want)
            if not _better_or_equal(side, edge, frontier[side]):
                _reveal(book, side, row, frontier[side], edge)
            frontier[side] = edge
    assert executions > 80
    assert checked_levels > 15_000


def test_reader_converts_exactly(day: lobster.LobsterDay) -> None:
    first = day.events[0]
    # 34200.004241176 s after midnight in New York on 2012-06-21 (UTC-4), 5853300 / 10,000 USD.
    assert int(first["ts"]) == 1_340_251_200_000_000_000 + 34_200_004_241_176
    assert int(first["price"]) == 585_330_000_000
    assert int(first["qty"]) == 18 * 10**9
    assert int(first["kind"]) == Kind.BOOK_ADD
    assert int(first["side"]) == Side.BUY
    assert np.all(np.diff(day.events["ts"]) >= 0)
    kinds = np.bincount(day.events["kind"], minlength=64)
    assert kinds[Kind.BOOK_ADD] == 471
    assert kinds[Kind.BOOK_CANCEL] == 369
    assert kinds[Kind.BOOK_EXECUTE] == 98
    assert kinds[Kind.TRADE] == 61
    assert len(lobster.book_deltas(day.events)) == 938


def test_batch_replay_equals_message_by_message(day: lobster.LobsterDay) -> None:
    one = day.seeded_book()
    for k in range(200):
        if int(day.events[k]["kind"]) not in (Kind.TRADE, Kind.NONE):
            one.apply_batch(day.events[k : k + 1])
    batch = day.seeded_book()
    assert batch.apply_batch(lobster.book_deltas(day.events[:200])) > 0
    assert np.array_equal(one.snapshot(), batch.snapshot())


def test_bad_files_raise_admf_errors(tmp_path: Path) -> None:
    from admf.errors import AdmfError

    bad_name = tmp_path / "foo.csv"
    bad_name.write_text("34200.1,1,1,1,1,1\n")
    with pytest.raises(AdmfError, match="date in the file name"):
        lobster.read_messages(bad_name)
    bad_row = tmp_path / "AAPL_2012-06-21_0_1_message_10.csv"
    bad_row.write_text("34200.1,9,1,1,1,1\n")
    with pytest.raises(AdmfError, match=r"message_10\.csv:1: column .type.: 9 is not"):
        lobster.read_messages(bad_row)
    bad_row.write_text("34200.1,1,1,1\n")
    with pytest.raises(AdmfError, match="expected 6 columns"):
        lobster.read_messages(bad_row)


def test_unknown_order_in_data_is_a_book_error(day: lobster.LobsterDay) -> None:
    book = OrderBook(lobster.TICK)
    deltas = lobster.book_deltas(day.events)
    cancels = deltas[deltas["kind"] == Kind.BOOK_CANCEL]
    with pytest.raises(BookError, match=f"order {int(cancels[0]['order_id'])}: unknown"):
        book.apply_batch(cancels[:1])
    assert len(book) == 0


def test_sim_venue_on_real_data_keeps_queue_position(day: lobster.LobsterDay) -> None:
    """An own bid joins the best bid at the start of the AAPL excerpt: it waits behind the
    size resting there, which only shrinks as the data trades or cancels it, and it never
    fills more than it asked for."""
    venue = SimVenue(lobster.TICK, latency_to_venue=1_000, latency_to_strategy=1_000)
    venue.on_market(day.seeded_book().snapshot())
    # The first 400 deltas: later ones touch levels the seed row did not show (see above).
    deltas = lobster.book_deltas(day.events)[:400]
    bid = venue.bbo()[0]
    assert bid is not None
    start = int(deltas[0]["ts"])
    qty = 100 * SCALE
    answers = [venue.submit_order(1, Side.BUY, qty, bid, ts=start)]
    ahead = []
    for k in range(len(deltas)):
        answers.append(venue.on_market(deltas[k : k + 1]))
        state = venue.order(1)
        if state is not None:
            ahead.append(state[4])
        elif ahead:
            break  # filled
    out = np.concatenate(answers)
    assert int(out[0]["kind"]) == Kind.ORDER_ACCEPTED
    assert ahead[0] > 0
    assert all(a >= b for a, b in pairwise(ahead))
    assert ahead[-1] < ahead[0]
    fills = out[out["kind"] == Kind.FILL]
    assert int(fills["qty"].sum()) <= qty
    assert np.all(fills["price"] == bid)
    assert np.all(fills["flags"] & Flag.OWN)


SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"


def _check_consistent(day: lobster.LobsterDay) -> int:
    """Applies ``consistent_deltas`` message by message; the book must equal every row
    within the file's depth. Returns the number of corrections."""
    events, ends, _ = lobster.consistent_deltas(day)
    book = day.seeded_book()
    start = 0
    for k, end in enumerate(ends):
        book.apply_batch(events[start:end])
        start = int(end)
        for side in (Side.BUY, Side.SELL):
            got = [(p, q) for p, q, _ in book.depth(side, day.rows.levels)]
            assert got == day.rows.side(k, side), f"row {k + 1}, {side.name}"
    book.check_invariants()
    return int(np.count_nonzero(events["flags"] & Flag.SNAPSHOT))


def test_consistent_deltas_match_every_row(day: lobster.LobsterDay) -> None:
    # A handful of corrections: levels revealed from beyond the 10 the file shows.
    assert 0 < _check_consistent(day) < 30


@pytest.mark.skipif(not SHARED.exists(), reason=f"shared data {SHARED} not present")
def test_consistent_deltas_on_a_full_level_1_day() -> None:
    stem = "AMZN_2012-06-21_34200000_57600000"
    day = lobster.read_day(SHARED / f"{stem}_message_1.csv", SHARED / f"{stem}_orderbook_1.csv")
    assert len(day.events) == 57_515
    # A level-1 file reveals a new best level whenever the best one empties.
    assert _check_consistent(day) > 1_000
