"""The book built from real CME market-by-order data: ESH4 on 2023-12-25 (Databento DBN,
from the project's shared data), through the Globex pre-open where the venue's own book
crosses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from admf import Flag, Kind, OrderBook, Side
from admf.data import databento

DBN = (
    Path(__file__).resolve().parents[2].parent
    / "shared/data/market/nautilus__databento_esh4-glbx-mdp3-20231225.mbo.dbn.zst"
)

pytestmark = pytest.mark.skipif(not DBN.exists(), reason=f"shared data file {DBN} not present")


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    return databento.read_mbo(DBN)


def test_reader_maps_actions_and_keeps_prices_exact(events: np.ndarray) -> None:
    assert len(events) == 59_448  # A, C, M records; F and T are not book deltas
    kinds = set(np.unique(events["kind"]))
    assert kinds == {Kind.BOOK_ADD, Kind.BOOK_CANCEL, Kind.BOOK_MODIFY}
    first = events[0]
    # The file opens with a snapshot: 4799.00 for 2 contracts, order 6412777162812.
    assert (int(first["price"]), int(first["qty"])) == (4_799_000_000_000, 2 * 10**9)
    assert int(first["order_id"]) == 6_412_777_162_812
    assert int(first["side"]) == Side.BUY
    assert int(first["flags"]) & Flag.SNAPSHOT
    assert np.all(events["price"] % databento.CME_ES_TICK == 0)
    assert np.all(np.diff(events["ts"]) >= 0)
    with_trades = databento.read_mbo(DBN, trades=True)
    assert np.count_nonzero(with_trades["kind"] == Kind.TRADE) == 2_973


def test_book_is_never_crossed(events: np.ndarray) -> None:
    builder = databento.CrossedBookBuilder()
    for i, ev in enumerate(events):
        builder.apply(ev)
        bid, ask = builder.book.bbo()
        assert bid is None or ask is None or bid < ask, f"crossed after event {i}"
    builder.book.check_invariants()
    assert builder.max_held > 0  # the pre-open did cross at the venue
    assert builder.held == {}  # and the open uncrossed it again
    assert builder.book.bbo() == (4_810_000_000_000, 4_810_250_000_000)
    assert len(builder.book) == 11_217


def test_plain_book_refuses_the_pre_open_crossing(events: np.ndarray) -> None:
    book = OrderBook(databento.CME_ES_TICK)
    with pytest.raises(Exception, match="crosses the best ask"):
        book.apply_batch(events)
    assert not book.is_crossed()
