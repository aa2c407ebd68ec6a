"""A raw HTTP client and a raw WebSocket client check the exchange's bodies and frames
against the protocol reference (Alpaca's shapes, byte for byte where the reference fixes
them)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import msgpack
import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.exchange.conftest import (
    AAPL_L3,
    KEY,
    ORCL,
    OTHER_KEY,
    OTHER_SECRET,
    SECRET,
    USDJPY,
    RunningExchange,
    run_exchange,
)

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
MSGPACK = {"Content-Type": "application/msgpack"}


@pytest.fixture
def ex() -> Iterator[RunningExchange]:
    exchange = run_exchange(f"ORCL={ORCL}", bars_page_size=40, auth_timeout=0.3, max_symbols=3)
    yield exchange
    exchange.close()


def ws_url(ex: RunningExchange, path: str) -> str:
    return ex.url.replace("http://", "ws://") + path


def test_rest_bodies(ex: RunningExchange) -> None:
    r = requests.get(f"{ex.url}/v2/account", timeout=5)
    assert (r.status_code, r.content) == (401, b'{"message": "unauthorized"}')
    r = requests.get(
        f"{ex.url}/v2/account", headers={**HEADERS, "APCA-API-SECRET-KEY": "x"}, timeout=5
    )
    assert (r.status_code, r.content) == (403, b'{"message": "forbidden."}')
    ex.step(1)
    body = {
        "symbol": "ORCL",
        "qty": "2",
        "side": "buy",
        "type": "limit",
        "limit_price": "1.25",
        "time_in_force": "gtc",
    }
    r = requests.post(f"{ex.url}/v2/orders", json=body, headers=HEADERS, timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    order = r.json()
    uuid.UUID(order["id"])
    uuid.UUID(order["asset_id"])
    assert order["qty"] == "2"
    assert order["limit_price"] == "1.25"
    assert order["filled_qty"] == "0"
    assert order["filled_avg_price"] is None
    assert order["status"] == "accepted"
    assert order["order_class"] == "simple"
    assert order["extended_hours"] is False
    assert order["submitted_at"] == order["created_at"] == "1995-01-04T00:00:00Z"
    # JSON numbers are accepted as well (alpaca-py sends them).
    r = requests.post(
        f"{ex.url}/v2/orders",
        json={**body, "qty": 3, "limit_price": 1.5},
        headers=HEADERS,
        timeout=5,
    )
    assert (r.json()["qty"], r.json()["limit_price"]) == ("3", "1.5")
    r = requests.get(f"{ex.url}/v2/orders/{uuid.UUID(int=1)}", headers=HEADERS, timeout=5)
    assert (r.status_code, r.content) == (404, b'{"code": 40410000, "message": "order not found"}')
    r = requests.delete(f"{ex.url}/v2/orders/{order['id']}", headers=HEADERS, timeout=5)
    assert (r.status_code, r.content) == (204, b"")
    r = requests.delete(f"{ex.url}/v2/orders", headers=HEADERS, timeout=5)
    assert r.status_code == 207
    (item,) = r.json()
    assert item["status"] == 200
    assert item["body"]["status"] == "canceled"
    r = requests.get(f"{ex.url}/v2/positions/ORCL", headers=HEADERS, timeout=5)
    assert (r.status_code, r.content) == (
        404,
        b'{"code": 40410000, "message": "position does not exist"}',
    )
    r = requests.get(
        f"{ex.url}/v2/calendar",
        params={"start": "1995-01-03", "end": "1995-01-03"},
        headers=HEADERS,
        timeout=5,
    )
    assert r.json() == [
        {
            "date": "1995-01-03",
            "open": "13:30",
            "close": "20:00",
            "session_open": "1330",
            "session_close": "2000",
        }
    ]


def test_bars_pages(ex: RunningExchange) -> None:
    ex.step(1000)
    url = f"{ex.url}/v2/stocks/bars"
    params = {"symbols": "ORCL", "timeframe": "1Day", "limit": "10000"}
    pages = []
    while True:
        r = requests.get(url, params=params, headers=HEADERS, timeout=5)
        assert r.status_code == 200
        page = r.json()
        assert set(page) == {"bars", "next_page_token", "currency"}
        pages.append(page)
        if page["next_page_token"] is None:
            break
        params["page_token"] = page["next_page_token"]
    assert [len(p["bars"]["ORCL"]) for p in pages] == [40, 40, 20]
    first = pages[0]["bars"]["ORCL"][0]
    assert first == {
        "t": "1995-01-03T00:00:00Z",
        "o": 2.179012,
        "h": 2.191358,
        "l": 2.117284,
        "c": 2.117284,
        "v": 36301200,
        "n": None,
        "vw": None,
    }
    r = requests.get(
        url, params={"symbols": "ORCL", "timeframe": "1Min"}, headers=HEADERS, timeout=5
    )
    assert r.status_code == 422
    assert r.json()["message"] == "ORCL has 1Day bars; timeframe 1Min is not available"
    r = requests.get(url, params={**params, "page_token": "garbage"}, headers=HEADERS, timeout=5)
    assert (r.status_code, r.json()["code"]) == (422, 40010001)


def test_trade_updates_frames(ex: RunningExchange) -> None:
    with connect(ws_url(ex, "/stream")) as ws:
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert json.loads(ws.recv(timeout=5)) == {
            "stream": "authorization",
            "data": {"status": "unauthorized", "action": "listen"},
        }
        ws.send(
            json.dumps({"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}})
        )
        frame = ws.recv(timeout=5)
        authorized = b'"data": {"status": "authorized", "action": "authenticate"}}'
        assert frame == b'{"stream": "authorization", ' + authorized
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert (
            ws.recv(timeout=5) == b'{"stream": "listening", "data": {"streams": ["trade_updates"]}}'
        )
        ex.step(1)
        body = {
            "symbol": "ORCL",
            "qty": "1",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        }
        requests.post(
            f"{ex.url}/v2/orders", json=body, headers=HEADERS, timeout=5
        ).raise_for_status()
        new = json.loads(ws.recv(timeout=5))
        assert new["stream"] == "trade_updates"
        assert new["data"]["event"] == "new"
        assert new["data"]["order"]["status"] == "new"
        ex.step(1)
        fill = json.loads(ws.recv(timeout=5))["data"]
        assert fill["event"] == "fill"
        assert (fill["price"], fill["qty"], fill["position_qty"]) == ("2.123457", "1", "1")
        uuid.UUID(fill["execution_id"])
        assert fill["order"]["filled_avg_price"] == "2.123457"
        assert fill["timestamp"] == "1995-01-05T00:00:00Z"
    with connect(ws_url(ex, "/stream")) as ws:
        ws.send(
            json.dumps({"action": "authenticate", "data": {"key_id": KEY, "secret_key": "wrong"}})
        )
        assert json.loads(ws.recv(timeout=5))["data"]["status"] == "unauthorized"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


def test_market_data_frames_json_and_msgpack(ex: RunningExchange) -> None:
    with connect(ws_url(ex, "/v2/iex")) as ws:
        assert ws.recv(timeout=5) == '[{"T":"success","msg":"connected"}]'
        ws.send(json.dumps({"action": "subscribe", "bars": ["ORCL"]}))
        assert ws.recv(timeout=5) == '[{"T":"error","code":401,"msg":"not authenticated"}]'
        ws.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
        assert ws.recv(timeout=5) == '[{"T":"success","msg":"authenticated"}]'
        ws.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
        assert ws.recv(timeout=5) == '[{"T":"error","code":403,"msg":"already authenticated"}]'
        ws.send("{nope")
        assert ws.recv(timeout=5) == '[{"T":"error","code":400,"msg":"invalid syntax"}]'
        ws.send(json.dumps({"action": "subscribe", "bars": "ORCL"}))
        assert ws.recv(timeout=5) == '[{"T":"error","code":400,"msg":"invalid syntax"}]'
        ws.send(json.dumps({"action": "subscribe", "bars": ["ORCL"], "trades": ["A", "B", "C"]}))
        assert ws.recv(timeout=5) == '[{"T":"error","code":405,"msg":"symbol limit exceeded"}]'
        ws.send(json.dumps({"action": "subscribe", "bars": ["ORCL"]}))
        assert json.loads(ws.recv(timeout=5)) == [
            {
                "T": "subscription",
                "trades": [],
                "quotes": [],
                "bars": ["ORCL"],
                "updatedBars": [],
                "dailyBars": [],
                "statuses": [],
                "lulds": [],
                "corrections": [],
                "cancelErrors": [],
            }
        ]
        ex.step(1)
        assert json.loads(ws.recv(timeout=5)) == [
            {
                "T": "b",
                "S": "ORCL",
                "o": 2.179012,
                "h": 2.191358,
                "l": 2.117284,
                "c": 2.117284,
                "v": 36301200,
                "t": "1995-01-03T00:00:00Z",
                "n": None,
                "vw": None,
            }
        ]
    with connect(ws_url(ex, "/v2/sip"), additional_headers=MSGPACK) as ws:
        assert msgpack.unpackb(ws.recv(timeout=5)) == [{"T": "success", "msg": "connected"}]
        ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
        assert msgpack.unpackb(ws.recv(timeout=5)) == [{"T": "success", "msg": "authenticated"}]
        # alpaca-py splits big subscribe messages into fragments.
        packed = msgpack.packb({"action": "subscribe", "bars": ["ORCL"], "quotes": []})
        ws.send([packed[:7], packed[7:]])
        assert msgpack.unpackb(ws.recv(timeout=5))[0]["bars"] == ["ORCL"]
        ex.step(1)
        frame = ws.recv(timeout=5)
        assert isinstance(frame, bytes)
        (bar,) = msgpack.unpackb(frame)
        assert bar["t"] == msgpack.Timestamp.from_unix_nano(789_177_600 * 10**9)  # 1995-01-04
        # On the wire: "t" then a timestamp 32 extension (fixext 4, type -1) of 789177600 s.
        assert b"\xa1t\xd6\xff" + (789_177_600).to_bytes(4, "big") in frame
    with connect(ws_url(ex, "/v2/iex"), additional_headers=MSGPACK) as ws:
        ws.recv(timeout=5)
        ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": "wrong"}))
        assert msgpack.unpackb(ws.recv(timeout=5)) == [
            {"T": "error", "code": 402, "msg": "auth failed"}
        ]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    with connect(ws_url(ex, "/v2/iex")) as ws:
        ws.recv(timeout=5)
        assert ws.recv(timeout=5) == '[{"T":"error","code":404,"msg":"auth timeout"}]'


def test_book_data_streams_quotes_of_the_touch_and_trades() -> None:
    ex = run_exchange(f"AAPL={AAPL_L3}")
    try:
        with connect(ws_url(ex, "/v2/iex")) as ws:
            ws.recv(timeout=5)
            ws.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
            ws.recv(timeout=5)
            ws.send(json.dumps({"action": "subscribe", "quotes": ["AAPL"], "trades": ["AAPL"]}))
            ws.recv(timeout=5)
            ex.step(300)
            msgs = json.loads(ws.recv(timeout=5))
    finally:
        ex.close()
    quotes = [m for m in msgs if m["T"] == "q"]
    trades = [m for m in msgs if m["T"] == "t"]
    # The first orderbook row of the LOBSTER file: ask 585.94 x 200, bid 585.33 x 18.
    assert (quotes[0]["ap"], quotes[0]["as"], quotes[0]["bp"], quotes[0]["bs"]) == (
        585.94,
        200,
        585.33,
        18,
    )
    assert all(q["bp"] < q["ap"] for q in quotes)
    assert len({(q["bp"], q["bs"], q["ap"], q["as"]) for q in quotes}) > 10
    assert trades
    assert all(t["s"] > 0 for t in trades)


def test_real_time_replay_and_admin_control() -> None:
    # 100 USD/JPY quotes spanning about an hour, played at 20,000x: about 0.2 s.
    ex = run_exchange(f"USDJPY={USDJPY}", paused=False, speed=20_000.0)
    try:
        admin = f"{ex.url}/admin"
        started = time.monotonic()
        while not requests.get(f"{admin}/state", timeout=5).json()["finished"]:
            assert time.monotonic() - started < 10
            time.sleep(0.02)
        server = ex.server
        assert server is not None
        span = ex.call(lambda: int(server.core.timeline["ts"][-1] - server.core.timeline["ts"][0]))
        assert time.monotonic() - started >= span / 1e9 / 20_000 * 0.9
        r = requests.post(f"{admin}/replay", json={"action": "rewind"}, timeout=5)
        assert (r.status_code, r.json()["code"]) == (422, 40010001)
        r = requests.post(f"{admin}/replay", json={"action": "play", "speed": -1}, timeout=5)
        assert r.status_code == 422
    finally:
        ex.close()
    paused = run_exchange(f"USDJPY={USDJPY}")
    try:
        admin = f"{paused.url}/admin"
        assert (
            requests.post(
                f"{admin}/replay", json={"action": "step", "events": 7}, timeout=5
            ).json()["position"]
            == 7
        )
        time.sleep(0.1)
        assert requests.get(f"{admin}/state", timeout=5).json()["position"] == 7  # still paused
        requests.post(
            f"{admin}/replay", json={"action": "play", "as_fast_as_possible": True}, timeout=5
        )
        started = time.monotonic()
        while not requests.get(f"{admin}/state", timeout=5).json()["finished"]:
            assert time.monotonic() - started < 10
            time.sleep(0.01)
    finally:
        paused.close()


def test_connection_limit_unsubscribe_and_stop_listening() -> None:
    ex = run_exchange(f"ORCL={ORCL}", max_connections=1)
    auth = json.dumps({"action": "auth", "key": KEY, "secret": SECRET})
    try:
        with connect(ws_url(ex, "/v2/iex")) as first, connect(ws_url(ex, "/v2/iex")) as second:
            for ws in (first, second):
                ws.recv(timeout=5)
                ws.send(auth)
            assert first.recv(timeout=5) == '[{"T":"success","msg":"authenticated"}]'
            assert (
                second.recv(timeout=5)
                == '[{"T":"error","code":406,"msg":"connection limit exceeded"}]'
            )
            first.send(json.dumps({"action": "subscribe", "bars": ["ORCL"], "trades": ["ORCL"]}))
            first.recv(timeout=5)
            first.send(json.dumps({"action": "unsubscribe", "bars": ["ORCL"]}))
            reply = json.loads(first.recv(timeout=5))[0]
            assert (reply["bars"], reply["trades"]) == ([], ["ORCL"])
            ex.step(1)  # a bar: nobody wants it now
            first.send(json.dumps({"action": "subscribe", "bars": ["ORCL"]}))
            assert json.loads(first.recv(timeout=5))[0]["T"] == "subscription"
        with connect(ws_url(ex, "/stream")) as ws:
            ws.send(
                json.dumps(
                    {"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}}
                )
            )
            ws.recv(timeout=5)
            ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            ws.recv(timeout=5)
            ws.send(json.dumps({"action": "listen", "data": {"streams": []}}))
            assert json.loads(ws.recv(timeout=5)) == {
                "stream": "listening",
                "data": {"streams": []},
            }
            body = {
                "symbol": "ORCL",
                "qty": "1",
                "side": "buy",
                "type": "market",
                "time_in_force": "day",
            }
            requests.post(
                f"{ex.url}/v2/orders", json=body, headers=HEADERS, timeout=5
            ).raise_for_status()
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.3)  # no longer listening: no trade update
    finally:
        ex.close()


def test_rate_limit_headers_and_429() -> None:
    ex = run_exchange(f"ORCL={ORCL}", rate_limit=3)
    try:
        while time.time() % 60 > 57:  # the budget is per wall-clock minute: not at its edge
            time.sleep(0.1)
        seen = []
        for _ in range(3):
            r = requests.get(f"{ex.url}/v2/clock", headers=HEADERS, timeout=5)
            assert r.status_code == 200
            seen.append(int(r.headers["X-Ratelimit-Remaining"]))
            assert r.headers["X-Ratelimit-Limit"] == "3"
            assert int(r.headers["X-Ratelimit-Reset"]) % 60 == 0
        assert seen == [2, 1, 0]
        r = requests.get(f"{ex.url}/v2/clock", headers=HEADERS, timeout=5)
        assert (r.status_code, r.json()) == (
            429,
            {"code": 42910000, "message": "rate limit exceeded"},
        )
        assert r.headers["X-Ratelimit-Remaining"] == "0"
        # Another account has its own budget.
        other = {"APCA-API-KEY-ID": OTHER_KEY, "APCA-API-SECRET-KEY": OTHER_SECRET}
        assert requests.get(f"{ex.url}/v2/clock", headers=other, timeout=5).status_code == 200
    finally:
        ex.close()
