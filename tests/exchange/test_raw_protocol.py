"""A raw HTTP client and a raw WebSocket client check the exchange's bodies and frames
against the protocol reference (Alpaca's shapes, byte for byte where the reference fixes
them)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import msgpack
import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.exchange.conftest import KEY, ORCL, SECRET, RunningExchange, run_exchange

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
    r = requests.get(f"{ex.url}/v2/account", headers={**HEADERS, "APCA-API-SECRET-KEY": "x"}, timeout=5)
    assert (r.status_code, r.content) == (403, b'{"message": "forbidden."}')
    ex.step(1)
    body = {"symbol": "ORCL", "qty": "2", "side": "buy", "type": "limit", "limit_price": "1.25", "time_in_force": "gtc"}
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
    r = requests.post(f"{ex.url}/v2/orders", json={**body, "qty": 3, "limit_price": 1.5}, headers=HEADERS, timeout=5)
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
    assert (r.status_code, r.content) == (404, b'{"code": 40410000, "message": "position does not exist"}')
    r = requests.get(f"{ex.url}/v2/calendar", params={"start": "1995-01-03", "end": "1995-01-03"}, headers=HEADERS, timeout=5)
    assert r.json() == [
        {"date": "1995-01-03", "open": "13:30", "close": "20:00", "session_open": "1330", "session_close": "2000"}
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
    assert first == {"t": "1995-01-03T00:00:00Z", "o": 2.179012, "h": 2.191358, "l": 2.117284, "c": 2.117284, "v": 36301200, "n": None, "vw": None}
    r = requests.get(url, params={"symbols": "ORCL", "timeframe": "1Min"}, headers=HEADERS, timeout=5)
    assert r.status_code == 422
    assert r.json()["message"] == "ORCL has 1Day bars; timeframe 1Min is not available"
    r = requests.get(url, params={**params, "page_token": "garbage"}, headers=HEADERS, timeout=5)
    assert (r.status_code, r.json()["code"]) == (422, 40010001)


def test_trade_updates_frames(ex: RunningExchange) -> None:
    with connect(ws_url(ex, "/stream")) as ws:
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert json.loads(ws.recv(timeout=5)) == {"stream": "authorization", "data": {"status": "unauthorized", "action": "listen"}}
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}}))
        frame = ws.recv(timeout=5)
        assert frame == b'{"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}'
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert ws.recv(timeout=5) == b'{"stream": "listening", "data": {"streams": ["trade_updates"]}}'
        ex.step(1)
        body = {"symbol": "ORCL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
        requests.post(f"{ex.url}/v2/orders", json=body, headers=HEADERS, timeout=5).raise_for_status()
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
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": KEY, "secret_key": "wrong"}}))
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
            {"T": "subscription", "trades": [], "quotes": [], "bars": ["ORCL"], "updatedBars": [], "dailyBars": [],
             "statuses": [], "lulds": [], "corrections": [], "cancelErrors": []}
        ]
        ex.step(1)
        assert json.loads(ws.recv(timeout=5)) == [
            {"T": "b", "S": "ORCL", "o": 2.179012, "h": 2.191358, "l": 2.117284, "c": 2.117284, "v": 36301200,
             "t": "1995-01-03T00:00:00Z", "n": None, "vw": None}
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
        assert msgpack.unpackb(ws.recv(timeout=5)) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    with connect(ws_url(ex, "/v2/iex")) as ws:
        ws.recv(timeout=5)
        assert ws.recv(timeout=5) == '[{"T":"error","code":404,"msg":"auth timeout"}]'
