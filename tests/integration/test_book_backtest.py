"""Backtests on book data: LOBSTER and Databento MBO through the book venue."""

from __future__ import annotations

from pathlib import Path

import pytest

from admf import Kind
from admf.backtest import BacktestSettings, backtest, load_source, resolve_strategy, run_kernel
from admf.book import OrderBook
from admf.errors import AdmfError

ROOT = Path(__file__).resolve().parents[2]
LOBSTER = ROOT / "tests/data/lobster"
AAPL = LOBSTER / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
CME = ROOT.parent / "shared/data/market/nautilus__databento_esh4-glbx-mdp3-20231225.mbo.dbn.zst"


def test_lobster_source_is_seeded_and_consistent_with_the_orderbook_file() -> None:
    source = load_source(AAPL, 1)
    assert source.tick is not None
    events = source.events
    assert (events["instrument"] == 1).all()
    seed = events[(events["flags"] & 2) != 0][:20]
    assert (seed["order_id"] == 0).all()  # anonymous size: orders nobody announced
    book = OrderBook(source.tick, 1)
    deltas = events[events["kind"] != Kind.TRADE]
    assert book.apply_batch(deltas) == len(deltas)  # no delta refused


def test_on_book_sees_the_book_already_updated() -> None:
    source = load_source(AAPL, 1)
    strategy = resolve_strategy("tests.integration.strategies:BookWatcher")
    kernel, _ = run_kernel(
        strategy, {}, BacktestSettings(), [source.events], [1], None, books={1: source.tick}
    )
    watcher = kernel.components[-1]
    seen = watcher.seen  # type: ignore[attr-defined]
    assert len(seen) == int((source.events["kind"] != Kind.TRADE).sum())
    # Replaying the same deltas into a plain book gives the same top after each of them.
    book = OrderBook(source.tick, 1)
    deltas = source.events[source.events["kind"] != Kind.TRADE]
    for i, (_, bid, ask) in enumerate(seen[:300]):
        book.apply_batch(deltas[i : i + 1])
        assert book.bbo() == (bid, ask)


def test_missing_orderbook_file_is_a_clear_error(tmp_path: Path) -> None:
    lone = tmp_path / AAPL.name
    lone.write_bytes(AAPL.read_bytes())
    with pytest.raises(AdmfError, match=r"orderbook file .* is not beside it"):
        backtest("tests.integration.strategies:NoOp", [lone])


def test_databento_mbo_runs_through_the_book_venue() -> None:
    if not CME.exists():
        pytest.skip("the CME MBO file is in the shared data, not here")
    result = backtest("tests.integration.strategies:NoOp", [CME])
    kinds = result.kernel.kind_counts()
    assert kinds["BOOK_ADD"] > 10_000
    assert result.kernel.errors == 0
    # The pre-open auction crosses the book; the venue refuses those deltas one by one, and
    # each refusal is an ERROR event that says why (never a silent gap).
    errors = result.of_kind(Kind.ERROR)
    assert len(errors) < kinds["BOOK_ADD"] // 5
    for seq in errors["seq"][:50]:
        assert "venue" in result.payloads[int(seq)]
