"""The unmodified alpaca-py TradingClient against the exchange over loopback: every call of
the trading REST API, and errors surfacing as APIError with Alpaca's status and code."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus, QueryOrderStatus
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetAssetsRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)

from tests.exchange.conftest import KEY, OTHER_KEY, OTHER_SECRET, SECRET, RunningExchange

# The first bars of tests/data/orcl-1995-daily-100.csv (open, high, low, close).
BAR2 = (2.123457, 2.148148, 2.092592, 2.135803)  # 1995-01-04
BAR3_OPEN = 2.141975  # 1995-01-05


def client(ex: RunningExchange, key: str = KEY, secret: str = SECRET) -> TradingClient:
    return TradingClient(key, secret, url_override=ex.url)


def market(qty: float, side: str = "buy", **kw: object) -> MarketOrderRequest:
    kw.setdefault("time_in_force", "day")
    return MarketOrderRequest(symbol="ORCL", qty=qty, side=side, **kw)


def test_account_and_a_market_order_filled_at_the_next_open(orcl: RunningExchange) -> None:
    c = client(orcl)
    account = c.get_account()
    assert account.status == "ACTIVE"
    assert float(account.cash) == 100_000
    orcl.step(1)  # the bar of 1995-01-03 closes
    order = c.submit_order(market(10))
    assert isinstance(order.id, uuid.UUID)
    assert order.status == OrderStatus.ACCEPTED
    assert order.submitted_at is not None
    assert float(order.filled_qty) == 0
    orcl.step(1)  # 1995-01-04: fills at its open
    filled = c.get_order_by_id(order.id)
    assert filled.status == OrderStatus.FILLED
    assert float(filled.filled_avg_price) == BAR2[0]
    assert float(filled.filled_qty) == 10
    assert c.get_account().cash == "99978.76543"  # 100000 - 10 * 2.123457, exact
    (position,) = c.get_all_positions()
    assert position.symbol == "ORCL"
    assert position.qty == "10"
    assert float(position.avg_entry_price) == BAR2[0]
    assert c.get_open_position("ORCL").cost_basis == "21.23457"


def test_limit_orders_rest_list_replace_and_cancel(orcl: RunningExchange) -> None:
    c = client(orcl)
    orcl.step(1)
    low = c.submit_order(
        LimitOrderRequest(
            symbol="ORCL",
            qty=5,
            side="buy",
            time_in_force="gtc",
            limit_price=1.5,
            client_order_id="low-1",
        )
    )
    assert low.client_order_id == "low-1"
    assert c.get_order_by_client_id("low-1").id == low.id
    open_orders = c.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert [o.id for o in open_orders] == [low.id]
    orcl.step(2)
    assert c.get_order_by_id(low.id).status == OrderStatus.NEW  # 1.5 never reached

    replaced = c.replace_order_by_id(low.id, ReplaceOrderRequest(limit_price=2.2, qty=4))
    assert replaced.id != low.id
    assert replaced.replaces == low.id
    old = c.get_order_by_id(low.id)
    assert old.status == OrderStatus.REPLACED
    assert old.replaced_by == replaced.id
    orcl.step(1)  # the next bar trades below 2.2: filled at its open (better than 2.2)
    done = c.get_order_by_id(replaced.id)
    assert done.status == OrderStatus.FILLED
    assert float(done.filled_qty) == 4

    resting = c.submit_order(
        LimitOrderRequest(symbol="ORCL", qty=1, side="buy", time_in_force="gtc", limit_price=1)
    )
    assert c.cancel_order_by_id(resting.id) is None
    assert c.get_order_by_id(resting.id).status == OrderStatus.CANCELED
    with pytest.raises(APIError) as err:
        c.cancel_order_by_id(resting.id)
    assert err.value.status_code == 422
    with pytest.raises(APIError) as err:
        c.cancel_order_by_id(uuid.uuid4())
    assert (err.value.status_code, err.value.code) == (404, 40410000)

    a = c.submit_order(
        LimitOrderRequest(symbol="ORCL", qty=1, side="buy", time_in_force="gtc", limit_price=1)
    )
    b = c.submit_order(
        LimitOrderRequest(symbol="ORCL", qty=2, side="buy", time_in_force="gtc", limit_price=1)
    )
    responses = c.cancel_orders()
    assert sorted(str(r.id) for r in responses) == sorted([str(a.id), str(b.id)])
    assert all(r.status == 200 for r in responses)
    assert c.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []


def test_order_list_filters(orcl: RunningExchange) -> None:
    c = client(orcl)
    ids = []
    for i in range(4):
        orcl.step(1)
        ids.append(
            c.submit_order(
                LimitOrderRequest(
                    symbol="ORCL", qty=1 + i, side="buy", time_in_force="gtc", limit_price=1
                )
            ).id
        )
    all_desc = c.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.id for o in all_desc] == ids[::-1]
    asc = c.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, direction="asc", limit=2))
    assert [o.id for o in asc] == ids[:2]
    created = [o.created_at for o in reversed(all_desc)]
    window = c.get_orders(GetOrdersRequest(status="all", after=created[0], until=created[3]))
    assert sorted(o.id for o in window) == sorted(ids[1:3])
    assert c.get_orders(GetOrdersRequest(status="all", symbols=["NOPE"])) == []
    assert c.get_orders(GetOrdersRequest(status="closed")) == []
    assert len(c.get_orders(GetOrdersRequest(status="all", side="buy"))) == 4


def test_stop_ioc_fok_opg_cls_and_notional(orcl: RunningExchange) -> None:
    c = client(orcl)
    orcl.step(1)
    stop = c.submit_order(
        StopOrderRequest(symbol="ORCL", qty=1, side="buy", time_in_force="gtc", stop_price=2.14)
    )
    stop_limit = c.submit_order(
        StopLimitOrderRequest(
            symbol="ORCL", qty=1, side="buy", time_in_force="gtc", stop_price=2.14, limit_price=2.0
        )
    )
    ioc = c.submit_order(
        LimitOrderRequest(symbol="ORCL", qty=1, side="buy", time_in_force="ioc", limit_price=1)
    )
    fok = c.submit_order(
        LimitOrderRequest(symbol="ORCL", qty=1, side="buy", time_in_force="fok", limit_price=3)
    )
    opg = c.submit_order(market(1, time_in_force="opg"))
    cls = c.submit_order(market(1, time_in_force="cls"))
    notional = c.submit_order(
        MarketOrderRequest(symbol="ORCL", notional=100, side="buy", time_in_force="day")
    )
    assert notional.qty is None
    orcl.step(1)  # bar 2: open 2.123457, high 2.148148, low 2.092592, close 2.135803

    def get(o: object) -> object:
        return c.get_order_by_id(o.id)  # type: ignore[attr-defined]

    assert float(get(stop).filled_avg_price) == 2.14  # triggered at the stop
    assert get(stop_limit).status == OrderStatus.NEW  # triggered, 2.14 > limit 2.0: rests
    assert get(ioc).status == OrderStatus.EXPIRED
    assert float(get(fok).filled_avg_price) == BAR2[0]
    assert float(get(opg).filled_avg_price) == BAR2[0]
    assert float(get(cls).filled_avg_price) == BAR2[3]
    assert get(notional).status == OrderStatus.FILLED
    assert float(get(notional).filled_qty) == pytest.approx(100 / BAR2[0], abs=1e-9)


def test_positions_close_one_and_all(orcl: RunningExchange) -> None:
    c = client(orcl)
    orcl.step(1)
    c.submit_order(market(10))
    orcl.step(1)
    with pytest.raises(APIError) as err:
        c.get_open_position("NOPE")
    assert (err.value.status_code, err.value.code) == (404, 40410000)
    half = c.close_position("ORCL", ClosePositionRequest(percentage="50"))
    assert half.side == "sell"
    assert half.qty == "5"
    orcl.step(1)
    assert c.get_open_position("ORCL").qty == "5"
    closing = c.close_all_positions(cancel_orders=True)
    assert [r.symbol for r in closing] == ["ORCL"]
    assert closing[0].status == 200
    orcl.step(1)
    assert c.get_all_positions() == []
    # Bought 10 at 2.123457, sold 5 at the next open (2.141975) and 5 at the one after
    # (2.092592): exact fixed point.
    assert c.get_account().cash == "99999.938265"


def test_assets_clock_and_calendar(orcl: RunningExchange) -> None:
    c = client(orcl)
    (asset,) = c.get_all_assets(GetAssetsRequest(status="active"))
    assert asset.symbol == "ORCL"
    assert asset.tradable
    assert c.get_asset("ORCL").id == asset.id
    assert c.get_asset(asset.id).symbol == "ORCL"
    with pytest.raises(APIError) as err:
        c.get_asset("NOPE")
    assert (err.value.status_code, err.value.code) == (404, 40410000)
    orcl.step(3)
    clock = c.get_clock()
    assert clock.timestamp == dt.datetime(1995, 1, 6, tzinfo=dt.UTC)
    assert clock.next_open > clock.timestamp
    days = c.get_calendar(GetCalendarRequest(start=dt.date(1995, 1, 4), end=dt.date(1995, 1, 6)))
    assert [d.date for d in days] == [dt.date(1995, 1, 4), dt.date(1995, 1, 5), dt.date(1995, 1, 6)]
    assert days[0].open.time() == dt.time(13, 30)


def test_refusals_are_api_errors_with_alpacas_bodies(orcl: RunningExchange) -> None:
    c = client(orcl)
    orcl.step(1)
    with pytest.raises(APIError) as err:
        c.submit_order(market(1_000_000))
    assert (err.value.status_code, err.value.code) == (403, 40310000)
    body = json.loads(str(err.value))
    assert body["message"] == "insufficient buying power"
    assert body["buying_power"] == "100000"
    assert float(body["cost_basis"]) == pytest.approx(1_000_000 * 2.117284)

    with pytest.raises(APIError) as err:
        c.submit_order(market(1, side="sell"))
    assert (err.value.status_code, err.value.code) == (403, 40310000)
    body = json.loads(str(err.value))
    assert body["message"].startswith("insufficient qty available")
    assert (body["available"], body["existing_qty"], body["symbol"]) == ("0", "0", "ORCL")

    c.submit_order(market(1, client_order_id="once"))
    with pytest.raises(APIError) as err:
        c.submit_order(market(1, client_order_id="once"))
    assert (err.value.status_code, err.value.code) == (422, 40010001)
    assert err.value.message == "client_order_id must be unique"
    assert len(c.get_orders(GetOrdersRequest(status="all"))) == 1

    with pytest.raises(APIError) as err:
        c.submit_order(MarketOrderRequest(symbol="NOPE", qty=1, side="buy", time_in_force="day"))
    assert (err.value.status_code, err.value.code) == (422, 40010001)

    with pytest.raises(APIError) as err:
        client(orcl, KEY, "wrong").get_account()
    assert err.value.status_code == 403
    assert json.loads(str(err.value)) == {"message": "forbidden."}
    assert SECRET not in str(err.value)

    # Another account sees none of this one's orders.
    other = client(orcl, OTHER_KEY, OTHER_SECRET)
    assert other.get_orders(GetOrdersRequest(status="all")) == []


def test_day_orders_expire_and_fees_are_paid() -> None:
    from tests.exchange.conftest import ORCL, run_exchange

    ex = run_exchange(f"ORCL={ORCL}", fee_rate=0.001)
    try:
        c = client(ex)
        ex.step(1)
        day = c.submit_order(
            LimitOrderRequest(symbol="ORCL", qty=1, side="buy", time_in_force="day", limit_price=1)
        )
        c.submit_order(market(10))
        ex.step(1)  # 1995-01-04: the market order fills; the day order works that day
        assert c.get_order_by_id(day.id).status == OrderStatus.NEW
        ex.step(1)  # 1995-01-05: a new day
        assert c.get_order_by_id(day.id).status == OrderStatus.EXPIRED
        account = c.get_account()
        # 10 * 2.123457 plus 0.1% of it, exact.
        assert account.cash == "99978.74419543"
        assert account.accrued_fees == "0.02123457"
    finally:
        ex.close()
