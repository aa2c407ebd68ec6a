"""A scripted trading session on the exchange over HTTP, used by the determinism and
backtest-parity tests (also run as ``python -m tests.exchange.scripted`` in a second
process, printing its hash)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import requests

from admf.backtest import load_source
from admf.events import Kind
from tests.exchange.conftest import AAPL_L3, KEY, ORCL, SECRET, RunningExchange, run_exchange

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
BOOK_KINDS = [
    int(k)
    for k in (Kind.BOOK_ADD, Kind.BOOK_CANCEL, Kind.BOOK_MODIFY, Kind.BOOK_EXECUTE, Kind.BOOK_CLEAR)
]

# (book event number at which to act, order): what the parity strategy does too.
AAPL_ORDERS: list[tuple[int, dict[str, Any]]] = [
    (50, {"qty": "150", "type": "market"}),
    (100, {"qty": "100", "type": "limit", "limit_price": "585.33", "time_in_force": "gtc"}),
    (300, {"qty": "40", "type": "limit", "limit_price": "585.20", "time_in_force": "gtc"}),
]


def book_positions(path: str) -> np.ndarray:
    """Index in the file's events of each book delta (what a strategy's on_book sees)."""
    events = load_source(path, 1).events
    return np.flatnonzero(np.isin(events["kind"], BOOK_KINDS))


def post(ex: RunningExchange, body: dict[str, Any]) -> dict[str, Any]:
    r = requests.post(f"{ex.url}/v2/orders", json=body, headers=HEADERS, timeout=10)
    r.raise_for_status()
    out: dict[str, Any] = r.json()
    return out


def aapl_session(**settings: Any) -> list[dict[str, Any]]:
    """The AAPL orders at their book events, then the rest of the day; returns every trade
    update in the order the exchange made them."""
    ex = run_exchange(f"AAPL={AAPL_L3}", initial_cash=1_000_000, **settings)
    updates: list[dict[str, Any]] = []
    try:
        server = ex.server
        assert server is not None
        ex.call(lambda: server.core.trade_updates.append(lambda key, data: updates.append(data)))
        books = book_positions(AAPL_L3)
        played = 0
        for number, order in AAPL_ORDERS:
            target = int(books[number - 1]) + 1
            played += ex.step(target - played)
            post(ex, {"symbol": "AAPL", "side": "buy", "time_in_force": "day", **order})
        ex.step(10**6)
    finally:
        ex.close()
    return updates


def mixed_session() -> list[dict[str, Any]]:
    """Orders on ORCL bars (seeded partial fills) and AAPL's book in one session."""
    ex = run_exchange(
        f"ORCL={ORCL}", f"AAPL={AAPL_L3}", partial_fill_rate=0.5, seed=11, initial_cash=10**6
    )
    updates: list[dict[str, Any]] = []
    try:
        server = ex.server
        assert server is not None
        ex.call(lambda: server.core.trade_updates.append(lambda key, data: updates.append(data)))
        for i in range(20):
            ex.step(1)
            post(
                ex,
                {
                    "symbol": "ORCL",
                    "qty": str(5 + i),
                    "side": "buy",
                    "type": "market",
                    "time_in_force": "gtc",
                },
            )
        post(
            ex,
            {
                "symbol": "AAPL",
                "qty": "120",
                "side": "buy",
                "type": "limit",
                "limit_price": "585.40",
                "time_in_force": "gtc",
            },
        )
        ex.step(90)
        post(
            ex,
            {
                "symbol": "AAPL",
                "qty": "50",
                "side": "buy",
                "type": "market",
                "time_in_force": "day",
            },
        )
        ex.step(10**6)
    finally:
        ex.close()
    return updates


def digest(updates: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(updates, sort_keys=True).encode()).hexdigest()


if __name__ == "__main__":
    print(digest(mixed_session()))
