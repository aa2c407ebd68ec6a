"""The market-data stream (``/v2/{feed}``): Alpaca's real-time protocol over the replay.

A client gets ``[{"T":"success","msg":"connected"}]``, authenticates with
``{"action":"auth","key":..,"secret":..}`` and subscribes to trades, quotes and bars per
symbol (``"*"`` for all). Frames are arrays of messages: MessagePack with ``t`` as a
Timestamp extension when the client connected with ``Content-Type: application/msgpack``
(alpaca-py always does), JSON text with RFC 3339 times otherwise. What one replay step
played goes to each client as one frame. Errors are ``{"T":"error","code":N,"msg":..}``
with Alpaca's codes (``ERRORS``).

Book data (quotes, LOBSTER, MBO) is streamed as quotes (the best bid and ask, when they
change) and trades (executions); bars as bars.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import msgpack
import numpy as np
from msgpack import Timestamp

from admf.events import SCALE, EventArray, Flag, Kind
from admf.exchange.market import Instrument
from admf.exchange.matching import BarMatcher, BookMatcher
from admf.exchange.streams import Frame, StreamClient
from admf.exchange.wire import rfc3339

ERRORS: Final[dict[int, str]] = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    408: "v2 not enabled",
    409: "insufficient subscription",
    500: "internal error",
}
CHANNELS: Final[tuple[str, ...]] = (
    "trades",
    "quotes",
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
)
"""Channels a subscription lists; corrections and cancel errors follow trades, as on
Alpaca."""
_SUBSCRIBABLE: Final[tuple[str, ...]] = (
    "trades",
    "quotes",
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
)


class DataClient:
    """One market-data connection: its encoding, key and subscriptions."""

    def __init__(self, stream: StreamClient, use_msgpack: bool) -> None:
        self.stream = stream
        self.msgpack = use_msgpack
        self.key_id: str | None = None
        # Insertion-ordered sets (dict keys): the subscription reply lists them in order.
        self.subs: dict[str, dict[str, None]] = {c: {} for c in CHANNELS}

    def encode(self, msgs: list[dict[str, Any]]) -> Frame:
        if self.msgpack:
            return bytes(msgpack.packb(msgs))
        return json.dumps(msgs, separators=(",", ":"), default=_json_default)

    def wants(self, channel: str, symbol: str) -> bool:
        subs = self.subs[channel]
        return symbol in subs or "*" in subs

    def symbol_count(self) -> int:
        return sum(len(s) for s in self.subs.values())

    def subscription(self) -> dict[str, Any]:
        reply: dict[str, Any] = {"T": "subscription"}
        for channel in CHANNELS:
            reply[channel] = list(self.subs[channel])
        return reply

    def change(self, action: str, request: dict[str, Any]) -> None:
        """Applies a subscribe/unsubscribe request (validated by the caller)."""
        for channel in _SUBSCRIBABLE:
            symbols = request.get(channel) or []
            for symbol in symbols:
                if action == "subscribe":
                    self.subs[channel][symbol] = None
                else:
                    self.subs[channel].pop(symbol, None)
        for follower in ("corrections", "cancelErrors"):
            self.subs[follower] = dict(self.subs["trades"])


def check_subscription(request: dict[str, Any]) -> bool:
    """True when every channel's value is a list of strings."""
    for channel in _SUBSCRIBABLE:
        value = request.get(channel)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            return False
    return True


def error(code: int) -> dict[str, Any]:
    return {"T": "error", "code": code, "msg": ERRORS[code]}


def _json_default(value: object) -> str:
    if isinstance(value, Timestamp):
        return rfc3339(value.to_unix_nano())
    raise TypeError(f"cannot encode {type(value).__name__}")


def _nums(values: np.ndarray) -> list[float | int]:
    """Fixed point to JSON numbers: whole values as ints, others as floats."""
    return [v // SCALE if v % SCALE == 0 else v / SCALE for v in values.tolist()]


def _first(item: tuple[int, str, str, dict[str, Any]]) -> int:
    return item[0]


def _quote(
    sym: str, ts: int, bid: float, bid_size: float, ask: float, ask_size: float
) -> dict[str, Any]:
    return {
        "T": "q",
        "S": sym,
        "bx": "",
        "bp": bid,
        "bs": bid_size,
        "ax": "",
        "ap": ask,
        "as": ask_size,
        "t": Timestamp.from_unix_nano(ts),
        "c": [],
        "z": "",
    }


class MarketDataHub:
    """Turns played market events into messages and hands each client its share."""

    def __init__(self) -> None:
        self.clients: list[DataClient] = []
        self.pending: list[tuple[int, str, str, dict[str, Any]]] = []
        """(timeline index, channel, symbol, message) since the last flush."""
        self.symbols: dict[int, str] = {}
        self.intervals: dict[int, int] = {}
        self._last_touch: dict[int, tuple[int, int, int, int]] = {}
        self.matchers: dict[int, BarMatcher | BookMatcher] = {}
        self.messages = 0
        self.offer: Callable[[StreamClient, Frame, str], bool] = lambda c, f, _: c.offer(f)
        """How a frame reaches a client (the server's, with its fault switches)."""

    def on_chunk(self, chunk: EventArray, first: int) -> None:
        """Messages for a played chunk: bars, quotes and trades, built column-wise."""
        kinds = chunk["kind"]
        numbers = chunk["instrument"].tolist()
        stamps = chunk["ts"].tolist()
        for kind in np.unique(kinds).tolist():
            rows = np.flatnonzero(kinds == kind)
            if kind == Kind.BAR:
                self._bars(chunk, rows, first, numbers, stamps)
            elif kind == Kind.QUOTE:
                bid, bsz, ask, asz = (
                    _nums(chunk[f][rows]) for f in ("price", "qty", "aux", "order_id")
                )
                for j, i in enumerate(rows.tolist()):
                    sym = self.symbols[numbers[i]]
                    msg = _quote(sym, stamps[i], bid[j], bsz[j], ask[j], asz[j])
                    self.pending.append((first + i, "quotes", sym, msg))
            elif kind in (Kind.TRADE, Kind.BOOK_EXECUTE):
                self._trades(chunk, rows, first, numbers, stamps)

    def _trades(
        self, chunk: EventArray, rows: np.ndarray, first: int, numbers: list[int], stamps: list[int]
    ) -> None:
        price, size = _nums(chunk["price"][rows]), _nums(chunk["qty"][rows])
        ids = chunk["order_id"][rows].tolist()
        for j, i in enumerate(rows.tolist()):
            sym = self.symbols[numbers[i]]
            msg = {
                "T": "t",
                "S": sym,
                "i": ids[j],
                "x": "",
                "p": price[j],
                "s": size[j],
                "t": Timestamp.from_unix_nano(stamps[i]),
                "c": [],
                "z": "",
            }
            self.pending.append((first + i, "trades", sym, msg))

    def _bars(
        self, chunk: EventArray, rows: np.ndarray, first: int, numbers: list[int], stamps: list[int]
    ) -> None:
        o, h, lo, c, v = (
            _nums(chunk[f][rows]) for f in ("aux", "order_id", "payload", "price", "qty")
        )
        for j, i in enumerate(rows.tolist()):
            number = numbers[i]
            sym = self.symbols[number]
            msg = {
                "T": "b",
                "S": sym,
                "o": o[j],
                "h": h[j],
                "l": lo[j],
                "c": c[j],
                "v": v[j],
                "t": Timestamp.from_unix_nano(stamps[i] - self.intervals[number]),
                "n": None,
                "vw": None,
            }
            self.pending.append((first + i, "bars", sym, msg))

    def on_book_event(self, inst: Instrument, event: np.void, index: int) -> None:
        """After a book delta: a quote when the best bid or ask (or their sizes) changed."""
        kind = int(event["kind"])
        # The snapshot that seeds a book is not trading: quotes start after it.
        if not Kind.BOOK_ADD <= kind <= Kind.BOOK_CLEAR or int(event["flags"]) & Flag.SNAPSHOT:
            return
        matcher = self.matchers.get(inst.number)
        if not isinstance(matcher, BookMatcher):
            return
        venue = matcher.venue
        bids, asks = venue.depth(1, 1), venue.depth(2, 1)
        touch = (
            bids[0][0] if bids else 0,
            bids[0][1] if bids else 0,
            asks[0][0] if asks else 0,
            asks[0][1] if asks else 0,
        )
        if touch != self._last_touch.get(inst.number):
            self._last_touch[inst.number] = touch
            n = _nums(np.array(touch, dtype=np.int64))
            msg = _quote(inst.symbol, int(event["ts"]), n[0], n[1], n[2], n[3])
            self.pending.append((index, "quotes", inst.symbol, msg))

    def flush(self) -> None:
        """Sends what was played since the last flush: one frame per client."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        pending.sort(key=_first)  # book quotes were made beside the column-wise messages
        self.clients = [c for c in self.clients if not c.stream.closed]
        cache: dict[tuple[bool, tuple[int, ...]], Frame] = {}
        for client in self.clients:
            if client.key_id is None:
                continue
            chosen = tuple(i for i, (_, ch, sym, _) in enumerate(pending) if client.wants(ch, sym))
            if not chosen:
                continue
            key = (client.msgpack, chosen)
            frame = cache.get(key)
            if frame is None:
                frame = cache[key] = client.encode([pending[i][3] for i in chosen])
            if self.offer(client.stream, frame, "market data"):
                self.messages += len(chosen)
