"""The ``alpaca`` adapter: Alpaca's market data v2 stream and its trading API (REST orders,
the ``trade_updates`` stream), with settable base URLs, so the same adapter runs against
``admf exchange serve`` and the real service.

Data: the v2 stream in JSON (``{"action":"auth"}``, ``{"action":"subscribe"}``); each bar,
quote and trade is stamped with the local receive time (the event's ``ts``) and keeps the
venue's time (quotes and trades: the ``payload`` slot; bars: a ``CLOCK`` reading before the
frame, venue time in ``aux``).

Execution (what happens to a command is in `AlpacaExecution`'s methods):

- every request has a timeout and passes a rate limiter (aiolimiter; 200 per minute, Alpaca's
  limit, by default);
- a definitive refusal (400, 403, 422) rejects the order; an ambiguous outcome (timeout,
  connection error, 5xx, 429) keeps it in flight and is resolved by asking for its client
  order id: found, it is adopted; not found, the same request is sent again (the venue refuses
  a second order with the same client order id, so this cannot duplicate it);
- a modify is a replace (``PATCH /v2/orders/{id}``: the new quantity still open, the limit
  price and the replacement's own client order id, derived from the command): the venue's new
  order is adopted as the order's leg in force and reported ``ORDER_MODIFIED``; a refusal is
  an ``ORDER_REJECTED`` of the modify and leaves the order open; an ambiguous outcome is
  resolved by asking for the replacement's client order id, as for submits. The fills of the
  replaced order and of its replacement count against the one engine order. Commands of one
  order go out one at a time (a cancel or a modify waits for the request before it);
- the trade_updates stream reconnects with exponential backoff and jitter; while it is down
  new exposure waits (``RECONCILING``), and after it is back the adapter reconciles every open
  order and the positions before new exposure is allowed (``RECONCILED``). Alpaca does not
  replay missed updates: fills that happened meanwhile are recovered from the orders'
  filled quantities. After ``stream_failures`` failed reconnects in a row it polls the orders
  instead (``POLLING``, recorded) and keeps trying the stream.

Credentials: ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` in the environment, or
``key_id`` / ``secret_key`` in the ``[alpaca]`` table of a config file (``--adapter-config``).
They are sent in request headers only and appear in no log, message or manifest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
import threading
from collections.abc import Sequence
from typing import Any, Final

import aiohttp
from aiolimiter import AsyncLimiter

from admf._core import Event
from admf.clock import clock_event
from admf.events import (
    BUY,
    K_ORDER_CANCEL,
    K_ORDER_CANCELED,
    K_ORDER_EXPIRED,
    K_ORDER_MODIFY,
    K_ORDER_REJECTED,
    K_ORDER_SUBMIT,
    Kind,
    to_fixed,
)
from admf.exchange.wire import fixed_to_str
from admf.live.adapter import AdapterContext, LiveSetupError
from admf.live.codes import LiveCode
from admf.live.outbox import Command
from admf.live.tracker import Leg, OrderTracker, TrackedOrder, tracked_order_id

KEY_ENV: Final = "APCA_API_KEY_ID"
SECRET_ENV: Final = "APCA_API_SECRET_KEY"
_POLLS_PER_STREAM_TRY: Final = 5
"""While polling, the stream is tried again after this many polls."""
_K_BAR, _K_QUOTE, _K_TRADE = int(Kind.BAR), int(Kind.QUOTE), int(Kind.TRADE)
_REFUSED: Final = (400, 401, 403, 404, 422)
"""Statuses that answer a request definitively: nothing was done."""
_ENDED: Final = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "done_for_day"})
"""Order statuses after which an order's filled quantity does not change."""


@dataclasses.dataclass(frozen=True)
class AlpacaSettings:
    trading_url: str = "https://paper-api.alpaca.markets"
    data_url: str = "wss://stream.data.alpaca.markets/v2/iex"
    stream_url: str = ""
    """trade_updates; empty: ``/stream`` on the trading host."""
    key_id: str = dataclasses.field(default="", repr=False)
    secret_key: str = dataclasses.field(default="", repr=False)
    timeout: float = 5.0
    """Seconds for any one network call."""
    idle_timeout: float = 60.0
    """Seconds a stream may stay silent before it is taken for dead and reconnected (Alpaca's
    streams can go mute without closing)."""
    rate_per_minute: int = 200
    backoff_min: float = 0.05
    backoff_max: float = 5.0
    stream_failures: int = 3
    """Failed reconnects of trade_updates in a row before falling back to polling."""
    poll_interval: float = 0.5
    submit_attempts: int = 6
    channels: tuple[str, ...] = ("bars",)
    """Market data channels: bars, quotes, trades."""
    inflight_check: float = 1.0
    """Seconds without news after which an open order is looked up at the venue."""
    time_in_force: str = "day"
    """Of orders that are not IOC or FOK: day or gtc."""

    def public(self) -> dict[str, Any]:
        """The settings that may be recorded (no credentials)."""
        out = dataclasses.asdict(self)
        out.pop("key_id")
        out.pop("secret_key")
        out["channels"] = list(self.channels)
        return out

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> AlpacaSettings:
        values: dict[str, Any] = {}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        config_file = options.get("config")
        if config_file:
            import tomllib

            try:
                with open(config_file, "rb") as f:
                    table = tomllib.load(f).get("alpaca", {})
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise LiveSetupError(f"adapter config {config_file}: {exc}") from None
            values.update({k: v for k, v in table.items() if k in fields})
        for name, value in options.items():
            if name == "config":
                continue
            if name not in fields or name in ("key_id", "secret_key"):
                accepted = ", ".join(n for n in fields if n not in ("key_id", "secret_key"))
                raise LiveSetupError(
                    f"alpaca adapter: unknown option {name!r}; options: {accepted} "
                    "(credentials come from the environment or --adapter-config)"
                )
            values[name] = value
        values.setdefault("key_id", os.environ.get(KEY_ENV, ""))
        values.setdefault("secret_key", os.environ.get(SECRET_ENV, ""))
        if not values["key_id"] or not values["secret_key"]:
            raise LiveSetupError(
                f"alpaca adapter: no credentials; set {KEY_ENV} and {SECRET_ENV} or give "
                "key_id and secret_key in the [alpaca] table of --adapter-config"
            )
        for name in (
            "timeout",
            "idle_timeout",
            "backoff_min",
            "backoff_max",
            "poll_interval",
            "inflight_check",
        ):
            if name in values:
                values[name] = float(values[name])
        for name in ("rate_per_minute", "stream_failures", "submit_attempts"):
            if name in values:
                values[name] = int(values[name])
        if isinstance(values.get("channels"), str):
            values["channels"] = tuple(c for c in values["channels"].split("+") if c)
        bad = [c for c in values.get("channels", ()) if c not in ("bars", "quotes", "trades")]
        if bad:
            raise LiveSetupError(
                f"alpaca adapter: channels must be bars, quotes or trades (joined by +), "
                f"got {', '.join(bad)}"
            )
        if values.get("time_in_force", "day") not in ("day", "gtc"):
            raise LiveSetupError(
                f"alpaca adapter: time_in_force must be day or gtc, got {values['time_in_force']!r}"
            )
        return cls(**values)


def parse_time(text: str) -> int:
    """An RFC 3339 timestamp as ns since the epoch (nanosecond digits kept; datetime keeps
    only microseconds)."""
    head, dot, rest = text.partition(".")
    frac = ""
    if dot:
        digits = 0
        while digits < len(rest) and rest[digits].isdigit():
            digits += 1
        frac, zone = rest[:digits], rest[digits:]
    else:
        zone = ""
        for mark in ("Z", "z", "+", "-"):
            at = head.find(mark, 10)  # after the date's own dashes
            if at >= 0:
                head, zone = head[:at], head[at:]
                break
    if zone in ("", "Z", "z"):
        zone = "+00:00"
    stamp = dt.datetime.fromisoformat(head + zone)
    return int(stamp.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])


def _fixed(value: Any) -> int:
    if isinstance(value, str):
        from admf.exchange.wire import parse_fixed

        return parse_fixed(value, "number")
    return to_fixed(float(value))


class _Backoff:
    """Exponential backoff with full jitter."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.high, self.low * (2**self.attempt))
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


class _Http:
    """REST calls with a timeout and the venue's rate limit; never logs the headers."""

    def __init__(self, settings: AlpacaSettings) -> None:
        self.settings = settings
        self.limiter = AsyncLimiter(settings.rate_per_minute, 60)
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                headers={
                    "APCA-API-KEY-ID": self.settings.key_id,
                    "APCA-API-SECRET-KEY": self.settings.secret_key,
                },
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            )
        return self.session

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """``(status, decoded body)``; raises TimeoutError or aiohttp.ClientError when the
        outcome is unknown."""
        session = await self.open()
        async with (
            self.limiter,
            session.request(
                method, self.settings.trading_url + path, json=body, params=params
            ) as response,
        ):
            text = await response.text()
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = {"message": text[:200]}
        return response.status, data

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def _message(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("message", data))
    return str(data)


class AlpacaData:
    """Market data from Alpaca's v2 stream (see the module docstring)."""

    def __init__(self, context: AdapterContext, settings: AlpacaSettings) -> None:
        self.context = context
        self.inbox = context.inbox
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None
        self.messages = 0
        self.reconnects = 0
        self.subscribed = threading.Event()
        """Set once the stream has been subscribed (for whoever waits for the data to flow)."""

    async def connect(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def run(self) -> None:
        backoff = _Backoff(self.settings.backoff_min, self.settings.backoff_max)
        while True:
            try:
                await self._stream(backoff)
            except (aiohttp.ClientError, TimeoutError, ConnectionError, ValueError) as exc:
                self.inbox.record(LiveCode.DATA_DISCONNECTED, {"error": type(exc).__name__})
            self.reconnects += 1
            await asyncio.sleep(backoff.next())

    async def _stream(self, backoff: _Backoff) -> None:
        assert self.session is not None
        s = self.settings
        async with asyncio.timeout(s.timeout):
            ws = await self.session.ws_connect(s.data_url, heartbeat=None)
        try:
            async with asyncio.timeout(s.timeout):
                await self._expect(ws, "connected")
                await ws.send_str(
                    json.dumps({"action": "auth", "key": s.key_id, "secret": s.secret_key})
                )
                await self._expect(ws, "authenticated")
                request: dict[str, Any] = {"action": "subscribe"}
                for channel in s.channels:
                    request[channel] = list(self.context.symbols)
                await ws.send_str(json.dumps(request))
            backoff.reset()
            self.inbox.record(LiveCode.DATA_CONNECTED, {"channels": list(s.channels)})
            self.subscribed.set()
            while True:
                msg = await ws.receive(timeout=s.idle_timeout)
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    break
                received = self.inbox.now()
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    self.inbox.record(LiveCode.MALFORMED, {"stream": "market data"})
                    continue
                self._frame(frame, received)
                self.inbox.hand_off()
            raise ConnectionError("market data stream closed")
        finally:
            await ws.close()

    async def _expect(self, ws: aiohttp.ClientWebSocketResponse, what: str) -> None:
        frame = json.loads(await ws.receive_str())
        for message in frame:
            if message.get("T") == "success" and message.get("msg") == what:
                return
            if message.get("T") == "error":
                # Auth failures name no credential: code and Alpaca's text only.
                raise LiveSetupError(
                    f"alpaca market data: error {message.get('code')} {message.get('msg')}"
                )
        raise ValueError(f"alpaca market data: expected {what!r}")

    def _frame(self, frame: Any, received: int) -> None:
        if not isinstance(frame, list):
            self.inbox.record(LiveCode.MALFORMED, {"stream": "market data"})
            return
        clocked = False
        for m in frame:
            if not isinstance(m, dict):
                continue
            kind = m.get("T")
            if kind not in ("b", "q", "t"):
                if kind == "error":
                    self.inbox.record(LiveCode.VENUE_ERROR, {"market data": m})
                continue
            inst = self.context.instrument(str(m.get("S")))
            if inst is None:
                continue
            try:
                venue_ts = parse_time(m["t"]) if isinstance(m["t"], str) else int(m["t"])
                if kind == "b":
                    if not clocked:
                        self.inbox.push(clock_event(received, venue_ts))
                        clocked = True
                    event = Event(
                        _K_BAR,
                        received,
                        instrument=inst,
                        price=_fixed(m["c"]),
                        qty=_fixed(m["v"]),
                        aux=_fixed(m["o"]),
                        order_id=_fixed(m["h"]),
                        payload=_fixed(m["l"]),
                    )
                elif kind == "q":
                    event = Event(
                        _K_QUOTE,
                        received,
                        instrument=inst,
                        price=_fixed(m["bp"]),
                        qty=_fixed(m["bs"]),
                        aux=_fixed(m["ap"]),
                        order_id=_fixed(m["as"]),
                        payload=venue_ts,
                    )
                else:
                    event = Event(
                        _K_TRADE,
                        received,
                        instrument=inst,
                        price=_fixed(m["p"]),
                        qty=_fixed(m["s"]),
                        payload=venue_ts,
                    )
            except (KeyError, TypeError, ValueError):
                self.inbox.record(LiveCode.MALFORMED, {"stream": "market data", "type": kind})
                continue
            self.messages += 1
            self.inbox.offer_market(event)

    async def disconnect(self) -> None:
        if self.session is not None:
            await self.session.close()


class AlpacaExecution:
    """Orders through Alpaca's trading API (see the module docstring)."""

    def __init__(self, context: AdapterContext, settings: AlpacaSettings) -> None:
        assert context.tracker is not None
        self.context = context
        self.inbox = context.inbox
        self.tracker: OrderTracker = context.tracker
        self.settings = settings
        self.http = _Http(settings)
        self._requests: set[asyncio.Task[None]] = set()
        """Requests on their way: one task per command, so a slow answer holds up no other
        order; a command is never dropped."""
        self._submitted: dict[int, asyncio.Event] = {}
        """Per order: set once its submission has an outcome (a cancel waits for it)."""
        self._changing: dict[int, asyncio.Lock] = {}
        """Per order: held while a cancel or a modify of it is with the venue (FIFO: its
        commands go out in order, each against the venue order left by the one before)."""
        self._touched: dict[int, float] = {}
        self.polling = False
        self.reconnects = 0

    # -- lifecycle --------------------------------------------------------------------------

    async def connect(self) -> None:
        await self.http.open()
        async with asyncio.timeout(self.settings.timeout):
            status, data = await self.http.call("GET", "/v2/account")
        if status != 200:
            raise LiveSetupError(f"alpaca: the account answered {status}: {_message(data)}")

    async def disconnect(self) -> None:
        await self.http.close()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._updates())
            group.create_task(self._inflight_checks())

    def send(self, commands: Sequence[Command]) -> None:
        loop = asyncio.get_running_loop()
        for command in commands:
            if command.kind == K_ORDER_SUBMIT:
                self.tracker.add(command)
                self._submitted[command.order_id] = asyncio.Event()
            task = loop.create_task(self._request(command))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    def busy(self) -> bool:
        return bool(self._requests)

    # -- commands ---------------------------------------------------------------------------

    async def _request(self, command: Command) -> None:
        self._touched[command.order_id] = asyncio.get_running_loop().time()
        if command.kind == K_ORDER_SUBMIT:
            try:
                await self._submit(command)
            finally:
                self._submitted[command.order_id].set()
            return
        submitted = self._submitted.get(command.order_id)
        if submitted is not None:
            await submitted.wait()
        async with self._changing.setdefault(command.order_id, asyncio.Lock()):
            if command.kind == K_ORDER_CANCEL:
                await self._cancel(command)
            elif command.kind == K_ORDER_MODIFY:
                await self._modify(command)

    def _changing_now(self, order_id: int) -> bool:
        lock = self._changing.get(order_id)
        return lock is not None and lock.locked()

    async def _inflight_checks(self) -> None:
        """Asks the venue about open orders that heard nothing for ``inflight_check``
        seconds, and about replaced legs whose end was not heard: an update the stream lost
        (Alpaca replays none) is found this way."""
        loop = asyncio.get_running_loop()
        period = self.settings.inflight_check
        while True:
            await asyncio.sleep(period)
            await self._settle_legs()
            now = loop.time()
            for order in self.tracker.open_orders():
                if (
                    order.order_id in self._submitted
                    and not self._submitted[order.order_id].is_set()
                ) or self._changing_now(order.order_id):
                    continue  # its request is still out
                if now - self._touched.get(order.order_id, 0.0) < period:
                    continue
                self._touched[order.order_id] = now
                await self._resolve(order)

    def _body(self, command: Command) -> dict[str, Any]:
        body: dict[str, Any] = {
            "symbol": self.context.symbols[command.instrument - 1],
            "side": "buy" if command.side == BUY else "sell",
            "type": "market" if command.market else "limit",
            "time_in_force": (
                "ioc" if command.ioc else "fok" if command.fok else self.settings.time_in_force
            ),
            "client_order_id": command.client_order_id,
        }
        if command.qty:
            body["qty"] = fixed_to_str(command.qty)
        else:
            body["notional"] = fixed_to_str(command.value)
        if not command.market:
            body["limit_price"] = fixed_to_str(command.price)
        return body

    async def _submit(self, command: Command) -> None:
        order = self.tracker.by_client[command.client_order_id]
        body = self._body(command)
        backoff = _Backoff(self.settings.backoff_min, self.settings.backoff_max)
        for _ in range(self.settings.submit_attempts):
            try:
                status, data = await self.http.call("POST", "/v2/orders", body)
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, data = 0, {"message": type(exc).__name__}
            if status == 200 and isinstance(data, dict):
                self._adopt(order, data)
                return
            unique = status == 422 and "unique" in _message(data)
            if status in _REFUSED and not unique:
                self.tracker.finish(order, K_ORDER_REJECTED, f"{status}: {_message(data)}")
                return
            # Ambiguous: the order may be at the venue. Ask for it by its client order id.
            order.ambiguous = True
            self.inbox.record(
                LiveCode.AMBIGUOUS,
                {"client_order_id": order.client_id, "status": status, "answer": _message(data)},
            )
            if await self._resolve(order):
                return
            await asyncio.sleep(backoff.next())
        self.tracker.finish(
            order,
            K_ORDER_REJECTED,
            f"no answer from the venue after {self.settings.submit_attempts} attempts",
        )

    async def _resolve(self, order: TrackedOrder) -> bool:
        """Looks the order up by its client order id; True if found (and adopted). A replace
        of it whose outcome is unknown is looked up too."""
        found = await self._look_up(order, order.client_id)
        if found:
            order.ambiguous = False
            if order.replacing is not None:
                await self._look_up(order, order.replacing.client_id)
        return found

    async def _look_up(self, order: TrackedOrder, client_id: str) -> bool:
        """Asks the venue for one of the order's venue orders (a leg or its replacement) by
        its client order id; True if found (and adopted)."""
        try:
            status, data = await self.http.call(
                "GET", "/v2/orders:by_client_order_id", params={"client_order_id": client_id}
            )
        except (TimeoutError, aiohttp.ClientError):
            return False
        if status == 200 and isinstance(data, dict):
            self.inbox.record(
                LiveCode.RESOLVED,
                {"client_order_id": client_id, "found": True, "status": data.get("status")},
            )
            self._adopt(order, data)
            return True
        if status == 404:
            self.inbox.record(LiveCode.RESOLVED, {"client_order_id": client_id, "found": False})
        return False

    def _leg(self, order: TrackedOrder, client_id: str, venue_id: str | None) -> Leg | None:
        """The order's leg ``client_id``; its waiting replacement becomes the leg in force
        (``ORDER_MODIFIED``) when the venue shows it. None: no leg of this session's."""
        replacing = order.replacing
        if replacing is not None and client_id == replacing.client_id:
            return self.tracker.replaced(order, venue_id)
        for leg in order.legs:
            if leg.client_id == client_id:
                return leg
        return None

    def _adopt(self, order: TrackedOrder, data: dict[str, Any]) -> None:
        """Brings a tracked order up to the venue's view of one of its venue orders (an order
        JSON)."""
        venue_id = str(data.get("id"))
        leg = self._leg(order, str(data.get("client_order_id", order.client_id)), venue_id)
        if leg is None:
            return
        leg.venue_id = leg.venue_id or venue_id
        self.tracker.ack(order, None)
        self._catch_up(order, leg, data)
        status = data.get("status")
        if leg is not order.leg:
            return  # a replaced leg: its fills count, its end is its replacement's start
        if status == "filled":
            order.done = True
        elif status == "canceled":
            self.tracker.finish(order, K_ORDER_CANCELED)
        elif status == "expired":
            self.tracker.finish(order, K_ORDER_EXPIRED)
        elif status == "rejected":
            self.tracker.finish(order, K_ORDER_REJECTED, "rejected by the venue")
        # "replaced": by the waiting replace, which the caller looks up by its own id.

    def _catch_up(self, order: TrackedOrder, leg: Leg, data: dict[str, Any]) -> None:
        """Reports what the venue's view of leg ``leg`` (an order JSON) shows filled beyond
        what was heard, as one fill at its average price; a leg the venue shows ended is
        settled (its filled quantity final)."""
        filled = _fixed(data.get("filled_qty") or 0)
        if filled > leg.filled:
            price = _fixed(data.get("filled_avg_price") or 0)
            self.tracker.fill(
                order,
                f"reconciled:{leg.client_id}:{filled}",
                price,
                filled - leg.filled,
                cumulative=filled,
                client_id=leg.client_id,
            )
        if data.get("status") in _ENDED:
            self.tracker.settle(leg)

    async def _modify(self, command: Command) -> None:
        order = self.tracker.by_order.get(command.order_id)
        if order is None or order.done:
            self.tracker.refuse(
                command.order_id, command.instrument, command, "modify of an order that is not open"
            )
            return
        if order.venue_id is None and not await self._resolve(order):
            self.tracker.refuse(
                command.order_id, command.instrument, command, "the order is not known at the venue"
            )
            return
        replacement = self.tracker.replace(order, command)
        body: dict[str, Any] = {
            "qty": fixed_to_str(command.qty),
            "client_order_id": replacement.client_id,
        }
        if command.price:
            body["limit_price"] = fixed_to_str(command.price)
        backoff = _Backoff(self.settings.backoff_min, self.settings.backoff_max)
        ambiguous = False
        for _ in range(self.settings.submit_attempts):
            try:
                status, data = await self.http.call("PATCH", f"/v2/orders/{order.venue_id}", body)
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, data = 0, {"message": type(exc).__name__}
            if order.replacing is not replacement:
                return  # the stream or a poll told the outcome meanwhile
            if status == 200 and isinstance(data, dict):
                self._adopt(order, data)
                return
            unique = status == 422 and "unique" in _message(data)
            if status in _REFUSED and not unique:
                # After a lost answer, "not open" may be this replace's own doing: ask first.
                if ambiguous and await self._look_up(order, replacement.client_id):
                    return
                self.tracker.refuse_replacement(order, f"{status}: {_message(data)}")
                return
            ambiguous = True
            self.inbox.record(
                LiveCode.AMBIGUOUS,
                {
                    "client_order_id": replacement.client_id,
                    "replaces": order.client_id,
                    "status": status,
                    "answer": _message(data),
                },
            )
            if await self._look_up(order, replacement.client_id):
                return
            await asyncio.sleep(backoff.next())
        self.tracker.refuse_replacement(
            order, f"no answer from the venue after {self.settings.submit_attempts} attempts"
        )

    async def _cancel(self, command: Command) -> None:
        order = self.tracker.by_order.get(command.order_id)
        if order is None or order.done:
            return
        if order.venue_id is None and not await self._resolve(order):
            self.inbox.record(
                LiveCode.VENUE_ERROR,
                {"cancel": order.client_id, "error": "order not known at the venue"},
            )
            return
        for _ in range(self.settings.submit_attempts):
            try:
                status, data = await self.http.call("DELETE", f"/v2/orders/{order.venue_id}")
            except (TimeoutError, aiohttp.ClientError):
                status, data = 0, None
            if status in (200, 204):
                return  # the canceled update follows on the stream (or the next poll)
            if status in (404, 422):
                self.inbox.record(
                    LiveCode.VENUE_ERROR,
                    {"cancel": order.client_id, "status": status, "error": _message(data)},
                )
                return
            await asyncio.sleep(self.settings.backoff_min)

    # -- order updates ----------------------------------------------------------------------

    async def _updates(self) -> None:
        backoff = _Backoff(self.settings.backoff_min, self.settings.backoff_max)
        failures = 0
        first = True
        while True:
            if not first and not self.polling:
                self.inbox.record(LiveCode.RECONCILING)
            first = False
            try:
                await self._stream(backoff)
                failures = 0
            except (
                aiohttp.ClientError,
                TimeoutError,
                ConnectionError,
                ValueError,
                TypeError,
            ) as exc:
                failures += 1
                if failures >= self.settings.stream_failures and not self.polling:
                    self.polling = True
                    self.inbox.record(
                        LiveCode.POLLING,
                        {"error": type(exc).__name__, "failures": failures},
                    )
                    # From now on polling tracks the orders: reconciled, exposure may go on.
                    await self.reconcile()
            self.reconnects += 1
            if self.polling:
                for _ in range(_POLLS_PER_STREAM_TRY):
                    await self._poll_once()
                    await asyncio.sleep(self.settings.poll_interval)
            else:
                await asyncio.sleep(backoff.next())

    async def _stream(self, backoff: _Backoff) -> None:
        session = await self.http.open()
        s = self.settings
        url = s.stream_url or s.trading_url.replace("http", "ws", 1) + "/stream"
        async with asyncio.timeout(s.timeout):
            ws = await session.ws_connect(url, heartbeat=None)
        try:
            async with asyncio.timeout(s.timeout):
                await ws.send_str(
                    json.dumps(
                        {
                            "action": "authenticate",
                            "data": {"key_id": s.key_id, "secret_key": s.secret_key},
                        }
                    )
                )
                reply = json.loads((await ws.receive()).data)
                if reply.get("data", {}).get("status") != "authorized":
                    raise LiveSetupError("alpaca trade_updates: not authorized")
                await ws.send_str(
                    json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}})
                )
            # Updates missed while the stream was down are not replayed: reconcile first.
            await self.reconcile()
            backoff.reset()
            if self.polling:
                self.polling = False
                self.inbox.record(LiveCode.STREAMING)
            while True:
                msg = await ws.receive(timeout=s.idle_timeout)
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    break
                try:
                    frame = json.loads(msg.data)
                except (ValueError, UnicodeDecodeError):
                    self.inbox.record(LiveCode.MALFORMED, {"stream": "trade_updates"})
                    continue
                if isinstance(frame, dict) and frame.get("stream") == "trade_updates":
                    self._update(frame.get("data"))
                    self.inbox.hand_off()
            raise ConnectionError("trade_updates stream closed")
        finally:
            await ws.close()

    def _update(self, data: Any) -> None:
        try:
            event = data["event"]
            venue_order = data["order"]
            client_id = venue_order["client_order_id"]
        except (KeyError, TypeError):
            self.inbox.record(LiveCode.MALFORMED, {"stream": "trade_updates"})
            return
        order = self.tracker.by_client.get(client_id)
        leg = None if order is None else self._leg(order, client_id, venue_order.get("id"))
        if order is None or leg is None:
            # An order this session does not track: another run's, one placed by hand.
            ours = tracked_order_id(self.tracker.prefix, client_id) is not None
            self.inbox.record(
                LiveCode.UNKNOWN_ORDER,
                {"client_order_id": client_id, "event": event, "this_run": ours},
            )
            return
        self._touched[order.order_id] = asyncio.get_running_loop().time()
        if event == "replaced" and isinstance(venue_order, dict):
            # The replaced leg's last word: fills of it the stream lost (between the replace
            # request and the venue's replacing it) are in its filled quantity.
            try:
                self._catch_up(order, leg, venue_order)
            except (TypeError, ValueError):
                self.inbox.record(LiveCode.MALFORMED, {"stream": "trade_updates"})
        if event in ("new", "accepted", "pending_new"):
            leg.venue_id = leg.venue_id or str(venue_order.get("id"))
            self.tracker.ack(order, None)
        elif event in ("fill", "partial_fill"):
            try:
                self.tracker.fill(
                    order,
                    str(data["execution_id"]),
                    _fixed(data["price"]),
                    _fixed(data["qty"]),
                    cumulative=_fixed(venue_order["filled_qty"]),
                    client_id=leg.client_id,
                )
                if event == "fill" and leg is order.leg:
                    order.done = True
            except (KeyError, TypeError, ValueError):
                self.inbox.record(LiveCode.MALFORMED, {"stream": "trade_updates"})
        elif leg is not order.leg:
            return  # a replaced leg's own end (``replaced``)
        elif event == "replaced":
            # Before the replace's answer: the replacement is in force.
            if self.tracker.replaced(order, venue_order.get("replaced_by")) is None:
                self.inbox.record(
                    LiveCode.VENUE_ERROR,
                    {"client_order_id": client_id, "error": "replaced, not by this session"},
                )
        elif event == "order_replace_rejected":
            self.tracker.refuse_replacement(order, "replace rejected by the venue")
        elif event == "canceled":
            self.tracker.finish(order, K_ORDER_CANCELED)
        elif event == "expired":
            self.tracker.finish(order, K_ORDER_EXPIRED)
        elif event == "rejected":
            self.tracker.finish(order, K_ORDER_REJECTED, "rejected by the venue")

    # -- reconciliation -----------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Asks the venue about every order still open here and about the positions; pushes
        what changed, then ``RECONCILED`` with what was compared."""
        found: dict[str, Any] = {"orders_checked": 0, "adopted": 0, "not_at_venue": 0}
        for order in self.tracker.open_orders():
            found["orders_checked"] += 1
            try:
                status, data = await self.http.call(
                    "GET",
                    "/v2/orders:by_client_order_id",
                    params={"client_order_id": order.client_id},
                )
            except (TimeoutError, aiohttp.ClientError):
                continue
            if status == 200 and isinstance(data, dict):
                found["adopted"] += 1
                self._adopt(order, data)
                replacing = order.replacing
                if (
                    replacing is not None
                    and not await self._look_up(order, replacing.client_id)
                    and not self.busy()
                ):
                    # The replace never got there (a crash before it left).
                    self.tracker.refuse_replacement(order, "not at the venue on reconciliation")
            elif status == 404 and not self.busy():
                # Not at the venue and no request of ours is on its way: it never got there.
                found["not_at_venue"] += 1
                self.tracker.finish(order, K_ORDER_REJECTED, "not at the venue on reconciliation")
        found["replaced_legs_checked"] = await self._settle_legs()
        positions: dict[str, str] = {}
        agree = True
        try:
            status, data = await self.http.call("GET", "/v2/positions")
            if status == 200 and isinstance(data, list):
                venue = {str(p["symbol"]): _fixed(p["qty"]) for p in data}
                ours = {
                    self.context.symbols[i - 1]: q for i, q in self.tracker.positions.items() if q
                }
                agree = venue == ours
                positions = {k: fixed_to_str(v) for k, v in sorted(venue.items())}
        except (TimeoutError, aiohttp.ClientError, KeyError, TypeError, ValueError):
            agree = False
        found["venue_positions"] = positions
        found["positions_agree"] = agree
        found.update(self.tracker.summary())
        self.inbox.record(LiveCode.RECONCILED, found)

    async def _settle_legs(self) -> int:
        """Asks the venue about every replaced leg not settled yet (open orders' and finished
        ones': a leg can fill between the replace request and the venue's replacing it, and
        the news may have been lost with a connection or a crash); returns how many."""
        checked = 0
        for order, leg in self.tracker.unsettled_legs():
            checked += 1
            await self._look_up(order, leg.client_id)
        return checked

    async def _poll_once(self) -> None:
        await self._settle_legs()
        for order in self.tracker.open_orders():
            if order.venue_id is None:
                continue
            try:
                status, data = await self.http.call("GET", f"/v2/orders/{order.venue_id}")
            except (TimeoutError, aiohttp.ClientError):
                return
            if status == 200 and isinstance(data, dict):
                self._adopt(order, data)
                if order.replacing is not None and not self._changing_now(order.order_id):
                    await self._look_up(order, order.replacing.client_id)


def make_adapter(context: AdapterContext) -> AlpacaData | AlpacaExecution:
    settings = AlpacaSettings.from_options(context.options)
    if context.tracker is not None:
        return AlpacaExecution(context, settings)
    return AlpacaData(context, settings)
