"""Orders on quote data through alpaca-py: marketable against the quote at once, at the
quote's price; a resting limit fills when a later quote reaches it (at its own price); a
market order larger than the displayed size fills what is shown and expires the rest."""

from __future__ import annotations

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from admf.backtest import load_source
from admf.events import SCALE
from tests.exchange.conftest import BTC_QUOTES, KEY, SECRET, USDJPY, run_exchange


def test_quotes_without_sizes() -> None:
    quotes = load_source(USDJPY, 1).events
    asks = quotes["aux"].tolist()
    # The first quote i after which an ask falls below it (at quote j).
    start, later = next(
        (i, j) for i in range(len(asks)) for j in range(i + 1, len(asks)) if asks[j] < asks[i]
    )
    ask0, limit = asks[start], asks[later]
    ex = run_exchange(f"USDJPY={USDJPY}", initial_cash=10**7)
    try:
        c = TradingClient(KEY, SECRET, url_override=ex.url)
        ex.step(start + 1)
        market = c.submit_order(
            MarketOrderRequest(symbol="USDJPY", qty=1000, side="buy", time_in_force="day")
        )
        filled = c.get_order_by_id(market.id)
        assert filled.status == OrderStatus.FILLED  # no size shown: no size limit
        assert float(filled.filled_avg_price) == ask0 / SCALE
        resting = c.submit_order(
            LimitOrderRequest(
                symbol="USDJPY", qty=5, side="buy", time_in_force="gtc", limit_price=limit / SCALE
            )
        )
        ex.step(later - start - 1)
        assert c.get_order_by_id(resting.id).status == OrderStatus.NEW
        ex.step(1)  # the quote whose ask reaches the limit
        done = c.get_order_by_id(resting.id)
        assert done.status == OrderStatus.FILLED
        assert float(done.filled_avg_price) == limit / SCALE
    finally:
        ex.close()


def test_quotes_with_sizes_partial_then_expired() -> None:
    quotes = load_source(BTC_QUOTES, 1).events
    ask_size = int(quotes["order_id"][0])
    ex = run_exchange(f"BTC={BTC_QUOTES}", initial_cash=10**8)
    try:
        c = TradingClient(KEY, SECRET, url_override=ex.url)
        ex.step(1)
        want = ask_size * 3 / SCALE
        order = c.submit_order(
            MarketOrderRequest(symbol="BTC", qty=want, side="buy", time_in_force="ioc")
        )
        done = c.get_order_by_id(order.id)
        assert done.status == OrderStatus.EXPIRED
        assert float(done.filled_qty) == ask_size / SCALE  # what the quote showed
        assert float(done.filled_avg_price) == int(quotes["aux"][0]) / SCALE
        assert float(c.get_open_position("BTC").qty) == ask_size / SCALE
    finally:
        ex.close()


def test_a_delta_the_venue_refuses_is_logged_and_the_replay_goes_on() -> None:
    import numpy as np

    from admf.events import Kind, Side, empty_events
    from admf.exchange.engine import ExchangeCore

    ex = run_exchange(f"USDJPY={USDJPY}")
    try:
        server = ex.server
        assert server is not None

        def inject() -> int:
            core: ExchangeCore = server.core
            bad = empty_events(1)
            bad["ts"] = core.timeline["ts"][0]
            bad["kind"] = Kind.BOOK_CANCEL  # cancels an order the book never had
            bad["instrument"] = 1
            bad["order_id"] = 99
            bad["side"] = Side.BUY
            bad["qty"] = SCALE
            core.timeline = np.concatenate([bad, core.timeline])
            core._last_index = {1: len(core.timeline) - 1}
            return core.play(10)

        assert ex.call(inject) == 10
        assert ex.call(lambda: server.journal.log_errors)[0].startswith("USDJPY: ")
        assert ex.call(lambda: server.core.position) == 10
    finally:
        ex.close()
