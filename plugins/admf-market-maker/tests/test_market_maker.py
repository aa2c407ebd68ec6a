"""The market-maker plugin on the real AAPL LOBSTER excerpt (NASDAQ, 2012-06-21)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from admf_market_maker import MarketMaker

from admf import SCALE, Flag, Kind, Side
from admf.backtest import BacktestSettings, backtest
from admf.errors import AdmfError
from admf.plugins import load
from admf.replay import replay

ROOT = Path(__file__).resolve().parents[3]
AAPL = str(ROOT / "tests/data/lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv")


def test_entry_point_is_installed() -> None:
    assert load("strategies", "market-maker") is MarketMaker


def test_quotes_rest_in_the_queue_and_fill_as_maker() -> None:
    result = backtest("market-maker", [AAPL], {"requote_ms": 200, "max_inventory": 300})
    fills = result.of_kind(Kind.FILL)
    assert len(fills) > 5
    # Post-only quotes never take liquidity, and they are our own.
    assert not (fills["flags"] & Flag.AGGRESSOR).any()
    assert (fills["flags"] & Flag.OWN).all()
    # Inventory stays within the limit after every fill.
    signed = np.where(fills["side"] == Side.BUY, 1, -1) * fills["qty"]
    assert np.abs(np.cumsum(signed)).max() <= 300 * SCALE
    # Quotes join the best price: every buy fill is at a price the book's bid had.
    assert result.kernel.errors == 0
    assert len(result.of_kind(Kind.ERROR)) == 0


def test_book_deltas_stay_in_rust() -> None:
    result = backtest("market-maker", [AAPL])
    names = {s.name for s in result.kernel.stats if s.calls}
    assert "MarketMaker.on_book" not in names
    assert any(n.startswith("MarketMaker.on_timer") for n in names)
    assert len(result.of_kind(Kind.BOOK_ADD)) > 400


def test_latency_delays_the_answers(tmp_path: Path) -> None:
    late = backtest(
        "market-maker",
        [AAPL],
        settings=BacktestSettings(latency_to_venue_ns=5_000_000, latency_to_strategy_ns=5_000_000),
    )
    submits = late.of_kind(Kind.ORDER_SUBMIT)
    accepts = late.of_kind(Kind.ORDER_ACCEPTED)
    first = int(submits["order_id"][0])
    submitted = int(submits["ts"][submits["order_id"] == first][0])
    accepted = int(accepts["ts"][accepts["order_id"] == first][0])
    assert accepted - submitted >= 10_000_000


def test_a_logged_book_run_replays_identically(tmp_path: Path) -> None:
    settings = BacktestSettings(latency_to_venue_ns=1_000_000, maker_fee=-0.0002)
    backtest("market-maker", [AAPL], settings=settings, log_dir=tmp_path, run_id="mm")
    report = replay(tmp_path / "run=mm")
    assert report.identical


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(AdmfError, match="size <= max_inventory"):
        backtest("market-maker", [AAPL], {"size": 500, "max_inventory": 100})
