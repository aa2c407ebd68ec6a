"""Bad input gets Alpaca's status and {"code", "message"} body, never a 500 or a traceback;
clients that disconnect, stall or open many connections do not stop or slow the others."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from websockets.sync.client import connect

from admf.exchange import ExchangeServer
from tests.exchange.conftest import DATA, KEY, ORCL, SECRET, USDJPY, RunningExchange, run_exchange

BTC_TRADES = str(DATA / "market" / "nautilus__binance_btcusdt-trades.parquet")

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
GOOD = {"symbol": "ORCL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}


@pytest.fixture
def ex() -> Iterator[RunningExchange]:
    exchange = run_exchange(f"ORCL={ORCL}", f"USDJPY={USDJPY}", client_buffer=8, max_connections=40)
    exchange.step(1)
    yield exchange
    exchange.close()


def still_serving(ex: RunningExchange) -> None:
    r = requests.get(f"{ex.url}/v2/account", headers=HEADERS, timeout=5)
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"{not json", 400, 40010000, "request body format is invalid"),
        (b"[1, 2]", 400, 40010000, "request body must be a JSON object"),
        (
            {**GOOD, "qty": True},
            422,
            40010001,
            "qty must be a number or a decimal string, got True",
        ),
        ({**GOOD, "qty": "abc"}, 422, 40010001, "qty is not a number: 'abc'"),
        ({**GOOD, "qty": "NaN"}, 422, 40010001, "qty must be finite, got 'NaN'"),
        (
            {**GOOD, "qty": "0.0000000001"},
            422,
            40010001,
            "qty has more than 9 decimal places: '0.0000000001'",
        ),
        ({**GOOD, "qty": "0"}, 422, 40010001, "qty must be > 0, got 0"),
        ({**GOOD, "qty": -3}, 422, 40010001, "qty must be > 0, got -3"),
        (
            {k: v for k, v in GOOD.items() if k != "qty"},
            422,
            40010001,
            "qty or notional is required, exactly one of them",
        ),
        (
            {**GOOD, "notional": "10"},
            422,
            40010001,
            "qty or notional is required, exactly one of them",
        ),
        ({**GOOD, "symbol": 5}, 422, 40010001, "symbol must be a string, got 5"),
        ({**GOOD, "symbol": "NOPE"}, 422, 40010001, 'asset "NOPE" not found'),
        ({**GOOD, "side": "up"}, 422, 40010001, "side must be one of buy, sell, got 'up'"),
        (
            {**GOOD, "type": "iceberg"},
            422,
            40010001,
            "type must be one of market, limit, stop, stop_limit, got 'iceberg'",
        ),
        (
            {**GOOD, "type": "trailing_stop"},
            422,
            40010001,
            "trailing_stop orders are not supported by this exchange",
        ),
        (
            {**GOOD, "time_in_force": "forever"},
            422,
            40010001,
            "time_in_force must be one of day, gtc, opg, cls, ioc, fok, got 'forever'",
        ),
        (
            {**GOOD, "type": "limit"},
            422,
            40010001,
            "limit_price must be given and > 0 for limit orders",
        ),
        (
            {**GOOD, "limit_price": "2"},
            422,
            40010001,
            "limit_price is not allowed for market orders",
        ),
        (
            {**GOOD, "extended_hours": "yes"},
            422,
            40010001,
            "extended_hours must be true or false, got 'yes'",
        ),
        (
            {**GOOD, "client_order_id": "x" * 49},
            422,
            40010001,
            "client_order_id must be 1 to 48 characters",
        ),
        (
            {**GOOD, "order_class": "bracket"},
            422,
            40010001,
            "order_class 'bracket' is not supported (simple only)",
        ),
        (
            {**GOOD, "symbol": "USDJPY", "time_in_force": "opg"},
            422,
            40010001,
            "time_in_force opg needs bar data; USDJPY has a book",
        ),
    ],
)
def test_bad_orders(
    ex: RunningExchange, body: object, status: int, code: int, message: str
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = requests.post(f"{ex.url}/v2/orders", data=data, headers=HEADERS, timeout=5)
    assert (r.status_code, r.json()) == (status, {"code": code, "message": message})
    assert (
        requests.get(
            f"{ex.url}/v2/orders", params={"status": "all"}, headers=HEADERS, timeout=5
        ).json()
        == []
    )
    still_serving(ex)


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "code"),
    [
        ("GET", f"/v2/orders/{uuid.UUID(int=7)}", None, 404, 40410000),
        ("GET", "/v2/orders/not-a-uuid", None, 404, 40410000),
        ("DELETE", f"/v2/orders/{uuid.UUID(int=7)}", None, 404, 40410000),
        ("PATCH", f"/v2/orders/{uuid.UUID(int=7)}", None, 404, 40410000),
        ("GET", "/v2/orders:by_client_order_id", {"client_order_id": "nope"}, 404, 40410000),
        ("GET", "/v2/orders:by_client_order_id", None, 422, 40010001),
        ("GET", "/v2/orders", {"limit": "abc"}, 422, 40010001),
        ("GET", "/v2/orders", {"limit": "501"}, 422, 40010001),
        ("GET", "/v2/orders", {"status": "weird"}, 422, 40010001),
        ("GET", "/v2/orders", {"after": "yesterday"}, 422, 40010001),
        ("GET", "/v2/orders", {"direction": "up"}, 422, 40010001),
        ("DELETE", "/v2/positions/ORCL", {"qty": "x"}, 422, 40010001),
        ("GET", "/v2/calendar", {"start": "1995-13-45"}, 422, 40010001),
        ("GET", "/v2/stocks/bars", {"symbols": "ORCL"}, 422, 40010001),
        ("GET", "/v2/stocks/bars", {"symbols": "ORCL", "timeframe": "7Fortnights"}, 422, 40010001),
        ("GET", "/v2/nothing/here", None, 404, 40410000),
        ("PUT", "/v2/account", None, 405, 40510000),
    ],
)
def test_bad_requests(
    ex: RunningExchange,
    method: str,
    path: str,
    params: dict[str, str] | None,
    status: int,
    code: int,
) -> None:
    r = requests.request(
        method,
        f"{ex.url}{path}",
        params=params,
        json={} if method == "PATCH" else None,
        headers=HEADERS,
        timeout=5,
    )
    assert r.status_code == status
    assert r.json()["code"] == code
    assert "Traceback" not in r.text
    still_serving(ex)


def test_too_large_body(ex: RunningExchange) -> None:
    r = requests.post(f"{ex.url}/v2/orders", data=b"x" * (2 << 20), headers=HEADERS, timeout=5)
    assert r.status_code == 413
    assert r.json()["code"] == 41310000
    still_serving(ex)


def test_stalled_disconnected_and_many_clients_do_not_stop_the_others() -> None:
    ex = run_exchange(f"ORCL={ORCL}", f"BTCT={BTC_TRADES}", client_buffer=16)
    server = ex.server
    assert server is not None
    try:
        _stall_and_disconnect(ex, server)
    finally:
        ex.close()


def _stall_and_disconnect(ex: RunningExchange, server: ExchangeServer) -> None:
    total = ex.call(lambda: len(server.core.timeline))
    sub = json.dumps({"action": "subscribe", "trades": ["*"], "bars": ["*"]})
    auth = json.dumps({"action": "auth", "key": KEY, "secret": SECRET})
    counts: list[int] = []
    ready = threading.Barrier(9)

    def reader(i: int, leave_after: int | None) -> None:
        with connect(ex.url.replace("http", "ws") + "/v2/iex") as ws:
            for text in (None, auth, sub):
                if text:
                    ws.send(text)
                ws.recv(timeout=5)
            ready.wait(timeout=10)
            got = 0
            while got < total:
                got += len(json.loads(ws.recv(timeout=10)))
                if leave_after is not None and got >= leave_after:
                    break  # goes away mid-stream
            counts.append(got)

    threads = [threading.Thread(target=reader, args=(i, 50 if i == 0 else None)) for i in range(8)]
    for t in threads:
        t.start()
    # A stalled client: handshakes, subscribes, then never reads.
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: fixed
    stalled.connect(("127.0.0.1", int(ex.url.rsplit(":", 1)[1])))
    stalled.sendall(
        b"GET /v2/iex HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for text in (auth, sub):
        payload = text.encode()
        stalled.sendall(bytes([0x81, 0x80 | len(payload)]) + b"\x00\x00\x00\x00" + payload)
    deadline = time.monotonic() + 10
    while ex.call(lambda: len(server.hub.clients)) < 9:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    ready.wait(timeout=10)
    for _ in range(total):
        ex.step(1)  # one frame per client per step
    started = time.monotonic()
    r = requests.get(f"{ex.url}/v2/account", headers=HEADERS, timeout=5)
    assert r.status_code == 200
    assert time.monotonic() - started < 1.0
    for t in threads:
        t.join(timeout=30)
    assert sorted(counts) == [50] + [total] * 7  # everyone else got every message
    cut = ex.call(lambda: [e for e in server.journal.log_errors])
    assert cut == ["slow client cut off"]
    stalled.close()
