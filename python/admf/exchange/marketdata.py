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

from admf.events import SCALE, Kind
from admf.exchange.market import Instrument
from admf.exchange.matching import BookMatcher
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


def _num(value: int) -> float | int:
    return value // SCALE if value % SCALE == 0 else value / SCALE


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
            return bytes(msgpack.packb([_for_msgpack(m) for m in msgs]))
        return json.dumps([_for_json(m) for m in msgs], separators=(",", ":"))

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


def _for_msgpack(msg: dict[str, Any]) -> dict[str, Any]:
    if "t" not in msg:
        return msg
    out = dict(msg)
    out["t"] = msgpack.Timestamp.from_unix_nano(msg["t"])
    return out


def _for_json(msg: dict[str, Any]) -> dict[str, Any]:
    if "t" not in msg:
        return msg
    out = dict(msg)
    out["t"] = rfc3339(msg["t"])
    return out


class MarketDataHub:
    """Turns played market events into messages and hands each client its share."""

    def __init__(self) -> None:
        self.clients: list[DataClient] = []
        self.pending: list[tuple[str, str, dict[str, Any]]] = []
        self._last_touch: dict[int, tuple[int, int, int, int]] = {}
        self.matchers: dict[int, Any] = {}
        self.messages = 0
        self.offer: Callable[[StreamClient, Frame, str], bool] = lambda c, f, _: c.offer(f)
        """How a frame reaches a client (the server's, with its fault switches)."""

    def on_event(self, inst: Instrument, event: np.void) -> None:
        kind = int(event["kind"])
        ts = int(event["ts"])
        sym = inst.symbol
        if kind == Kind.BAR:
            self.pending.append(
                (
                    "bars",
                    sym,
                    {
                        "T": "b",
                        "S": sym,
                        "o": _num(int(event["aux"])),
                        "h": _num(int(event["order_id"])),
                        "l": _num(int(event["payload"])),
                        "c": _num(int(event["price"])),
                        "v": _num(int(event["qty"])),
                        "t": ts - inst.interval_ns,
                        "n": None,
                        "vw": None,
                    },
                )
            )
        elif kind == Kind.QUOTE:
            self._quote(
                sym,
                ts,
                int(event["price"]),
                int(event["qty"]),
                int(event["aux"]),
                int(event["order_id"]),
            )
        elif kind == Kind.TRADE or kind == Kind.BOOK_EXECUTE:
            self.pending.append(
                (
                    "trades",
                    sym,
                    {
                        "T": "t",
                        "S": sym,
                        "i": int(event["order_id"]),
                        "x": "",
                        "p": _num(int(event["price"])),
                        "s": _num(int(event["qty"])),
                        "t": ts,
                        "c": [],
                        "z": "",
                    },
                )
            )
        if Kind.BOOK_ADD <= kind <= Kind.BOOK_CLEAR:
            matcher = self.matchers.get(inst.number)
            if isinstance(matcher, BookMatcher):
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
                    self._quote(sym, ts, *touch)

    def _quote(self, sym: str, ts: int, bid: int, bid_size: int, ask: int, ask_size: int) -> None:
        self.pending.append(
            (
                "quotes",
                sym,
                {
                    "T": "q",
                    "S": sym,
                    "bx": "",
                    "bp": _num(bid),
                    "bs": _num(bid_size),
                    "ax": "",
                    "ap": _num(ask),
                    "as": _num(ask_size),
                    "t": ts,
                    "c": [],
                    "z": "",
                },
            )
        )

    def flush(self) -> None:
        """Sends what was played since the last flush: one frame per client."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        self.clients = [c for c in self.clients if not c.stream.closed]
        cache: dict[tuple[bool, tuple[int, ...]], Frame] = {}
        for client in self.clients:
            if client.key_id is None:
                continue
            chosen = tuple(i for i, (ch, sym, _) in enumerate(pending) if client.wants(ch, sym))
            if not chosen:
                continue
            key = (client.msgpack, chosen)
            frame = cache.get(key)
            if frame is None:
                frame = cache[key] = client.encode([pending[i][2] for i in chosen])
            if self.offer(client.stream, frame, "market data"):
                self.messages += len(chosen)
