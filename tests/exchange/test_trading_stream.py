"""The unmodified alpaca-py TradingStream against the exchange: the authenticate /
authorization / listen handshake, and every event kind (new, partial_fill, fill, canceled,
expired, replaced, rejected) with per-execution price and qty, cumulative order fields and
the signed position."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, ReplaceOrderRequest
from alpaca.trading.stream import TradingStream

from tests.exchange.conftest import AAPL_L3, KEY, ORCL, SECRET, RunningExchange, run_exchange


@pytest.fixture
def two_symbols() -> Iterator[RunningExchange]:
    """ORCL daily bars (partial fills on: a seeded 90%) and AAPL's L3 book (one-cent tick)."""
    ex = run_exchange(f"ORCL={ORCL}", f"AAPL={AAPL_L3}", partial_fill_rate=0.9, seed=7)
    yield ex
    ex.close()


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        await asyncio.sleep(0.01)


class Listener:
    """A TradingStream on the test's loop, collecting trade updates."""

    def __init__(self, ex: RunningExchange, key: str = KEY, secret: str = SECRET) -> None:
        self.ex = ex
        self.updates: list[TradeUpdate] = []
        self.stream = TradingStream(key, secret, url_override=ex.server.stream_url)  # type: ignore[union-attr]

        async def on_update(update: TradeUpdate) -> None:
            self.updates.append(update)

        self.stream.subscribe_trade_updates(on_update)
        self.task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> Listener:
        self.task = asyncio.get_running_loop().create_task(self.stream._run_forever())
        server = self.ex.server
        assert server is not None
        await wait_for(lambda: bool(self.ex.call(lambda: len(server.listeners.get(KEY, [])))))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        await self.stream.close()

    def events(self, order_id: object) -> list[str]:
        return [u.event for u in self.updates if u.order.id == order_id]


@pytest.mark.asyncio
async def test_every_event_kind_reaches_trading_stream(two_symbols: RunningExchange) -> None:
    ex = two_symbols
    c = TradingClient(KEY, SECRET, url_override=ex.url)
    ex.step(1)
    async with Listener(ex) as ls:
        buy = await asyncio.to_thread(
            c.submit_order,
            MarketOrderRequest(symbol="ORCL", qty=10, side="buy", time_in_force="gtc"),
        )
        for _ in range(12):
            ex.step(1)
        far = await asyncio.to_thread(
            c.submit_order,
            LimitOrderRequest(symbol="ORCL", qty=1, side="buy", time_in_force="gtc", limit_price=1),
        )
        new = await asyncio.to_thread(
            c.replace_order_by_id, far.id, ReplaceOrderRequest(limit_price=1.1)
        )
        await asyncio.to_thread(c.cancel_order_by_id, new.id)
        ioc = await asyncio.to_thread(
            c.submit_order,
            LimitOrderRequest(symbol="ORCL", qty=1, side="buy", time_in_force="ioc", limit_price=1),
        )
        ex.step(1)
        off_tick = await asyncio.to_thread(
            c.submit_order,
            LimitOrderRequest(
                symbol="AAPL", qty=1, side="buy", time_in_force="day", limit_price=585.005
            ),
        )
        ex.step(100)  # past ORCL's last bar to AAPL's first message: the venue answers
        await wait_for(
            lambda: "rejected" in ls.events(off_tick.id) and "expired" in ls.events(ioc.id)
        )

    fills = [u for u in ls.updates if u.order.id == buy.id and u.event in ("fill", "partial_fill")]
    kinds = ls.events(buy.id)
    assert kinds[0] == "new"
    assert "partial_fill" in kinds
    assert kinds[-1] == "fill"
    assert sum(u.qty for u in fills) == 10  # per-execution quantities
    cumulative = [float(u.order.filled_qty) for u in fills]
    assert cumulative == sorted(cumulative)
    assert cumulative[-1] == 10
    assert [u.position_qty for u in fills] == cumulative  # signed position after each
    for u in fills:
        assert u.execution_id is not None
        assert u.price > 0
    assert ls.events(far.id) == ["new", "replaced"]
    replaced = next(u for u in ls.updates if u.event == "replaced")
    assert replaced.order.replaced_by == new.id
    assert ls.events(new.id) == ["new", "canceled"]
    assert ls.events(ioc.id) == ["new", "expired"]
    assert ls.events(off_tick.id) == ["new", "rejected"]


@pytest.mark.asyncio
async def test_a_wrong_secret_is_refused_and_nothing_is_heard(two_symbols: RunningExchange) -> None:
    ex = two_symbols
    server = ex.server
    assert server is not None
    stream = TradingStream(KEY, "wrong", url_override=server.stream_url)
    heard: list[TradeUpdate] = []

    async def on_update(update: TradeUpdate) -> None:
        heard.append(update)

    stream.subscribe_trade_updates(on_update)
    task = asyncio.get_running_loop().create_task(stream._run_forever())
    try:
        await asyncio.sleep(0.5)  # it connects, is refused, and backs off (1 s at first)
        assert ex.call(lambda: server.listeners.get(KEY, [])) == []
        c = TradingClient(KEY, SECRET, url_override=ex.url)
        ex.step(1)
        await asyncio.to_thread(
            c.submit_order,
            MarketOrderRequest(symbol="ORCL", qty=1, side="buy", time_in_force="day"),
        )
        await asyncio.sleep(0.1)
        assert heard == []
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await stream.close()
