"""Fault injection: each switch, set at start or at run time through the admin endpoint,
with what the client sees, the exchange staying up, and the fault in the exchange's log."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from admf.log import EventLog
from tests.exchange.conftest import KEY, ORCL, SECRET, RunningExchange, run_exchange

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
ORDER = {"symbol": "ORCL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "gtc"}


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[tuple[RunningExchange, Path]]:
    ex = run_exchange(f"ORCL={ORCL}", log_dir=str(tmp_path))
    ex.step(1)
    yield ex, tmp_path
    ex.close()


def set_faults(ex: RunningExchange, **switches: float) -> dict[str, float]:
    r = requests.patch(f"{ex.url}/admin/faults", json=switches, timeout=5)
    assert r.status_code == 200, r.text
    out: dict[str, float] = r.json()
    return out


@contextlib.contextmanager
def listen(ex: RunningExchange) -> Iterator[ClientConnection]:
    with connect(ex.url.replace("http", "ws") + "/stream") as ws:
        ws.send(
            json.dumps({"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}})
        )
        ws.recv(timeout=5)
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        ws.recv(timeout=5)
        yield ws


def submit(ex: RunningExchange, **extra: str) -> requests.Response:
    return requests.post(
        f"{ex.url}/v2/orders", json={**ORDER, **extra}, headers=HEADERS, timeout=15
    )


def logged_faults(path: Path) -> list[str]:
    (run,) = path.glob("run=*")
    with EventLog.open(run, read_only=True) as log:
        rows = log.sql("SELECT payload_text FROM custom ORDER BY seq").column(0).to_pylist()
    return [json.loads(r)["fault"] for r in rows if r and '"fault"' in r]


def test_http_faults_and_idempotent_retry(logged: tuple[RunningExchange, Path]) -> None:
    ex, path = logged
    set_faults(ex, http_status=429, http_count=1)
    r = requests.get(f"{ex.url}/v2/account", headers=HEADERS, timeout=5)
    assert (r.status_code, r.json()) == (429, {"code": 42910000, "message": "rate limit exceeded"})
    assert requests.get(f"{ex.url}/v2/account", headers=HEADERS, timeout=5).status_code == 200

    client = TradingClient(KEY, SECRET, url_override=ex.url)
    set_faults(ex, http_status=503, http_count=1)
    with pytest.raises(APIError) as err:
        client.get_account()
    assert (err.value.status_code, err.value.code) == (503, 50310000)

    # 504 after accepting: alpaca-py retries the POST (after 3 s); the reused
    # client_order_id is refused, so the retry does not make a second order.
    set_faults(ex, accept_then_504=1)
    with pytest.raises(APIError) as err:
        client.submit_order(
            MarketOrderRequest(
                symbol="ORCL", qty=1, side="buy", time_in_force="gtc", client_order_id="retry-1"
            )
        )
    assert (err.value.status_code, err.value.message) == (422, "client_order_id must be unique")
    (order,) = client.get_orders(GetOrdersRequest(status="all"))
    assert order.client_order_id == "retry-1"

    set_faults(ex, ack_delay_ms=300)
    started = time.monotonic()
    assert submit(ex).status_code == 200
    assert time.monotonic() - started >= 0.3
    set_faults(ex, ack_delay_ms=0)

    r = requests.patch(f"{ex.url}/admin/faults", json={"no_such_switch": 1}, timeout=5)
    assert r.status_code == 422
    assert "unknown switch 'no_such_switch'" in r.json()["message"]
    r = requests.patch(f"{ex.url}/admin/faults", json={"http_status": 418}, timeout=5)
    assert r.status_code == 422
    assert requests.get(f"{ex.url}/admin/faults", timeout=5).json()["http_status"] == 503
    ex.close()
    assert logged_faults(path) == ["http_status", "http_status", "accept_then_504", "ack_delay_ms"]


def test_trade_update_faults(logged: tuple[RunningExchange, Path]) -> None:
    ex, path = logged
    with listen(ex) as ws:
        set_faults(ex, duplicate_trade_updates=1)
        first = submit(ex).json()["id"]
        a, b = ws.recv(timeout=5), ws.recv(timeout=5)
        assert a == b
        assert json.loads(a)["data"]["order"]["id"] == first

        set_faults(ex, reorder_trade_updates=1)
        second = submit(ex).json()["id"]
        third = submit(ex).json()["id"]
        order = [json.loads(ws.recv(timeout=5))["data"]["order"]["id"] for _ in range(2)]
        assert order == [third, second]  # the held-back one comes after the next

        set_faults(ex, malformed_frames=1)
        submit(ex)
        bad = ws.recv(timeout=5)
        assert bad == b"\xc1\x00{not json"
        with pytest.raises(UnicodeDecodeError):
            json.loads(bad)

        set_faults(ex, drop_connection=1)
        submit(ex)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    # The exchange is still up, and a new connection works.
    with listen(ex) as ws:
        submit(ex)
        assert json.loads(ws.recv(timeout=5))["data"]["event"] == "new"
    ex.close()
    assert logged_faults(path) == [
        "duplicate_trade_updates",
        "reorder_trade_updates",
        "malformed_frames",
        "drop_connection",
    ]


def test_faults_set_at_start() -> None:
    ex = run_exchange(f"ORCL={ORCL}", faults={"http_status": 500, "http_count": 2})
    try:
        for _ in range(2):
            r = requests.get(f"{ex.url}/v2/clock", headers=HEADERS, timeout=5)
            assert (r.status_code, r.json()["code"]) == (500, 50010000)
        assert requests.get(f"{ex.url}/v2/clock", headers=HEADERS, timeout=5).status_code == 200
        state = requests.get(f"{ex.url}/admin/state", timeout=5).json()
        assert state["faults_injected"] == 2
    finally:
        ex.close()


def test_market_data_malformed_frame_and_drop(logged: tuple[RunningExchange, Path]) -> None:
    ex, _ = logged
    with connect(ex.url.replace("http", "ws") + "/v2/iex") as ws:
        ws.recv(timeout=5)
        ws.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
        ws.recv(timeout=5)
        ws.send(json.dumps({"action": "subscribe", "bars": ["ORCL"]}))
        ws.recv(timeout=5)
        set_faults(ex, malformed_frames=1)
        ex.step(1)
        assert ws.recv(timeout=5) == b"\xc1\x00{not json"
        ex.step(1)
        assert json.loads(ws.recv(timeout=5))[0]["T"] == "b"
        set_faults(ex, drop_connection=1)
        ex.step(1)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert requests.get(f"{ex.url}/v2/clock", headers=HEADERS, timeout=5).status_code == 200
