"""The paper exchange (``admf.exchange``) on a loopback ephemeral port, served from a thread
with its own event loop, for live sessions to trade against; and helpers to compare what the
venue holds with what a session's log says."""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from admf.events import Flag, Kind
from admf.exchange import Credentials, ExchangeConfig, ExchangeServer
from admf.live.alpaca import KEY_ENV, SECRET_ENV
from admf.live.codes import LiveCode
from admf.live.inbox import Inbox
from admf.live.tracker import leg_of_key
from tests.exchange.conftest import RunningExchange

DATA = Path(__file__).resolve().parents[1] / "data"
ORCL = str(DATA / "orcl-1995-daily-100.csv")
KEY, SECRET = "PKADMFLIVE0000000001", "live-test-secret-never-logged-0123456789ab"
BAR_NS = 86_400 * 10**9
T = TypeVar("T")


class Exchange(RunningExchange):
    """The exchange on the ORCL bars with the live tests' key pair, paused until `play`."""

    def __init__(
        self, faults: dict[str, Any] | None = None, partial_fill_rate: float = 0.0
    ) -> None:
        config = ExchangeConfig(data=(ORCL,), paused=True, partial_fill_rate=partial_fill_rate)
        super().__init__(config, faults, creds=[(Credentials(KEY, SECRET), None)])

    def play(self, bars_per_second: float) -> None:
        server = self.server
        assert server is not None

        def go() -> None:
            server.speed = bars_per_second * BAR_NS / 1e9
            server.paused = False
            server._anchor = None
            server._wake.set()

        self.call(go)

    def data_clients(self) -> int:
        server = self.server
        assert server is not None
        return self.call(lambda: sum(1 for c in server.hub.clients if c.key_id))

    def set_faults(self, faults: dict[str, Any]) -> None:
        server = self.server
        assert server is not None
        self.call(lambda: server.faults.update(faults))

    def orders(self) -> list[dict[str, Any]]:
        server = self.server
        assert server is not None
        return self.call(
            lambda: [
                {
                    "client_order_id": o.client_order_id,
                    "status": o.status,
                    "filled_qty": o.filled_qty,
                    "side": o.side,
                    "qty": o.qty,
                    "limit_price": o.limit_price,
                    "replaces": o.replaces,
                }
                for o in server.core.orders.values()
            ]
        )

    def position(self, symbol: str = "ORCL") -> int:
        server = self.server
        assert server is not None

        def get() -> int:
            pos = server.core.accounts[KEY].positions.get(symbol)
            return 0 if pos is None else int(pos.qty)

        return self.call(get)


@pytest.fixture
def exchange() -> Iterator[Exchange]:
    ex = Exchange()
    yield ex
    ex.close()


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return KEY, SECRET


def alpaca_options(ex: Exchange | ExchangeServer) -> dict[str, Any]:
    return {
        "trading_url": ex.url,
        "data_url": ex.url.replace("http", "ws", 1) + "/v2/iex",
        "backoff_min": 0.02,
        "backoff_max": 0.2,
        "poll_interval": 0.1,
        "timeout": 2.0,
        "inflight_check": 0.2,
    }


def play_when_connected(
    ex: Exchange, bars_per_second: float, faults: dict[str, Any] | None = None
) -> threading.Thread:
    """Starts the exchange's replay (with ``faults`` switched on) once a session's market
    data stream is subscribed."""

    def wait() -> None:
        for _ in range(500):
            if ex.data_clients():
                if faults:
                    ex.set_faults(faults)
                ex.play(bars_per_second)
                return
            threading.Event().wait(0.01)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def node_fills(events: np.ndarray) -> np.ndarray:
    inputs = (events["flags"] & Flag.INPUT) != 0
    return events[(events["kind"] == Kind.FILL) & inputs]


def drop_data_clients(ex: Exchange) -> int:
    """Cuts every market data connection abruptly (as a network failure would)."""
    server = ex.server
    assert server is not None

    def drop() -> int:
        clients = [c for c in server.hub.clients if not c.stream.closed]
        for client in clients:
            client.stream.drop()
        return len(clients)

    return ex.call(drop)


_LEG = re.compile(r"^(?P<base>admf-[0-9a-f]+-(?P<order>\d+))(?:-r(?P<seq>\d+))?$")


def leg_of(client_order_id: str) -> tuple[int, int | None]:
    """(engine order id, seq of the modify that made this leg, None for the first)."""
    m = _LEG.match(client_order_id)
    assert m is not None, client_order_id
    return int(m["order"]), None if m["seq"] is None else int(m["seq"])


def inputs_of(events: np.ndarray, kind: Kind) -> np.ndarray:
    return events[(events["kind"] == kind) & ((events["flags"] & Flag.INPUT) != 0)]


def live_records(events: np.ndarray, code: LiveCode) -> np.ndarray:
    """The session's own records with ``code``."""
    live = inputs_of(events, Kind.CUSTOM)
    return live[live["order_id"] == code]


def node_legs(events: np.ndarray) -> dict[int, list[int | None]]:
    """Each order's legs as the log tells them: None for its first venue order, then the seq
    of each modify the venue applied (``ORDER_MODIFIED``'s ``aux``), in order."""
    legs: dict[int, list[int | None]] = {}
    for e in events[events["kind"] == Kind.ORDER_SUBMIT]:
        legs.setdefault(int(e["order_id"]), [None])
    for e in inputs_of(events, Kind.ORDER_MODIFIED):
        legs[int(e["order_id"])].append(int(e["aux"]))
    return legs


def venue_agrees(events: np.ndarray, exchange: Exchange) -> list[dict[str, Any]]:
    """Every venue order is a leg of one of the node's orders (the first, or the one a
    logged modify asked for); each leg's fills at the venue are the node's fills of that leg
    (named by the fill's key), counted once; the positions agree. Returns the venue's
    orders."""
    venue = exchange.orders()
    ids = [o["client_order_id"] for o in venue]
    assert len(ids) == len(set(ids))
    modifies = events[(events["kind"] == Kind.ORDER_MODIFY) & ((events["flags"] & Flag.INPUT) == 0)]
    modify_seqs = dict(zip(modifies["seq"].tolist(), modifies["order_id"].tolist(), strict=True))
    legs = node_legs(events)
    filled_at_venue: collections.Counter[tuple[int, int | None]] = collections.Counter()
    for order in venue:
        order_id, seq = leg_of(order["client_order_id"])
        assert order_id in legs
        if seq is not None:
            assert modify_seqs[seq] == order_id  # a replacement asked for by that order's modify
        if order["filled_qty"]:
            filled_at_venue[order_id, seq] += order["filled_qty"]
    fills = node_fills(events)
    assert len(set(fills["payload"].tolist())) == len(fills)
    filled: collections.Counter[tuple[int, int | None]] = collections.Counter()
    for f in fills:
        order_id = int(f["order_id"])
        filled[order_id, legs[order_id][leg_of_key(int(f["payload"]))]] += int(f["qty"])
    assert filled == filled_at_venue
    position = sum(int(f["qty"]) if f["side"] == 1 else -int(f["qty"]) for f in fills)
    assert position == exchange.position()
    return venue


def drain_inbox(inbox: Inbox) -> tuple[np.ndarray, list[object]]:
    """The next batch the kernel's feed would take, with a payload (or None) per event."""
    batch = inbox.feed()
    assert batch is not None
    events, payloads = batch
    return events, payloads or [None] * len(events)
