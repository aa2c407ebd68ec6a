"""alpaca-py's StockDataStream (bars, quotes, trades over MessagePack with Timestamp
extensions) and StockHistoricalDataClient (bars across pages) against the exchange."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from admf.backtest import load_source
from admf.events import SCALE
from tests.exchange.conftest import (
    BTC_QUOTES,
    DATA,
    KEY,
    ORCL,
    SECRET,
    RunningExchange,
    run_exchange,
)

BTC_TRADES = str(DATA / "market" / "nautilus__binance_btcusdt-trades.parquet")


@pytest.fixture
def market() -> Iterator[RunningExchange]:
    ex = run_exchange(f"ORCL={ORCL}", f"BTCQ={BTC_QUOTES}", f"BTCT={BTC_TRADES}", bars_page_size=30)
    yield ex
    ex.close()


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_stock_data_stream_gets_bars_quotes_and_trades(market: RunningExchange) -> None:
    ex = market
    server = ex.server
    assert server is not None
    stream = StockDataStream(KEY, SECRET, feed=DataFeed.IEX, url_override=server.data_url("iex"))
    got: dict[str, list[Any]] = {"bars": [], "quotes": [], "trades": []}

    async def on_bar(bar: Any) -> None:
        got["bars"].append(bar)

    async def on_quote(quote: Any) -> None:
        got["quotes"].append(quote)

    async def on_trade(trade: Any) -> None:
        got["trades"].append(trade)

    stream.subscribe_bars(on_bar, "ORCL")
    stream.subscribe_quotes(on_quote, "BTCQ")
    stream.subscribe_trades(on_trade, "BTCT")
    task = asyncio.get_running_loop().create_task(stream._run_forever())
    try:

        def subscribed() -> bool:
            subs = ex.call(lambda: [dict(c.subs["trades"]) for c in server.hub.clients])
            return subs == [{"BTCT": None}]

        await wait_for(subscribed)
        total = ex.call(lambda: len(server.core.timeline))
        for _ in range(0, total, 500):
            ex.step(500)
        n_bars, n_quotes, n_trades = (
            len(load_source(p, 1).events) for p in (ORCL, BTC_QUOTES, BTC_TRADES)
        )
        await wait_for(
            lambda: (
                (len(got["bars"]), len(got["quotes"]), len(got["trades"]))
                == (n_bars, n_quotes, n_trades)
            )
        )
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await stream.close()
    first = got["bars"][0]
    assert first.symbol == "ORCL"
    assert first.timestamp == dt.datetime(1995, 1, 3, tzinfo=dt.UTC)  # the bar's open
    assert (first.open, first.high, first.low, first.close) == (
        2.179012,
        2.191358,
        2.117284,
        2.117284,
    )
    assert first.volume == 36301200
    quotes = load_source(BTC_QUOTES, 1).events
    q = got["quotes"][0]
    assert q.bid_price == quotes[0]["price"] / SCALE
    assert q.ask_price == quotes[0]["aux"] / SCALE
    assert q.timestamp == dt.datetime.fromtimestamp(int(quotes[0]["ts"]) // 10**9, dt.UTC).replace(
        microsecond=int(quotes[0]["ts"]) % 10**9 // 1000
    )
    trades = load_source(BTC_TRADES, 1).events
    assert [t.price for t in got["trades"]] == list(trades["price"] / SCALE)
    assert np.all(np.diff([t.timestamp.timestamp() for t in got["trades"]]) >= 0)


def test_historical_bars_across_pages(market: RunningExchange) -> None:
    client = StockHistoricalDataClient(KEY, SECRET, url_override=market.url)
    request = StockBarsRequest(
        symbol_or_symbols="ORCL",
        timeframe=TimeFrame.Day,
        start=dt.datetime(1995, 1, 1, tzinfo=dt.UTC),
    )
    assert client.get_stock_bars(request).data == {}  # nothing played: no history yet
    market.step(10_000)
    bars = client.get_stock_bars(request).data["ORCL"]
    events = load_source(ORCL, 1).events
    assert len(bars) == len(events) == 100  # 4 pages of at most 30
    assert [b.close for b in bars] == list(events["price"] / SCALE)
    assert bars[1].timestamp == dt.datetime(1995, 1, 4, tzinfo=dt.UTC)
    limited = client.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="ORCL",
            timeframe=TimeFrame.Day,
            start=dt.datetime(1995, 1, 1, tzinfo=dt.UTC),
            limit=45,
        )
    ).data["ORCL"]
    assert [b.close for b in limited] == [b.close for b in bars[:45]]
