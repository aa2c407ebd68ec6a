"""The exchange's network service over one asyncio event loop: the replay, the middlewares
(errors, faults, auth, rate limit), the trade_updates and market-data streams, the admin
endpoint; the REST handlers are in ``admf.exchange.rest``.

Stack: aiohttp. One library gives the HTTP server, the WebSocket server (with fragmented
messages, binary and text frames) and a runner that binds an ephemeral port in-process, and
it exposes each connection's transport, which the fault switches need (an abrupt drop, a
malformed frame); an ASGI stack would need uvicorn and a WebSocket library beside Starlette
for the same, with the transport hidden behind the ASGI interface.

Everything runs on the one loop: REST handlers and the replay call the engine
(``admf.exchange.engine``) synchronously, so its state changes in one order; clients are fed
through bounded queues (``admf.exchange.streams``) and never slow it down. Errors are
Alpaca's JSON bodies; an unexpected exception is a 500 with a generic body (the traceback
goes to the server's logger, never to the client).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from typing import Any

import msgpack
from aiohttp import WSMsgType, web

from admf._core import Event
from admf.errors import AdmfError
from admf.events import Kind
from admf.exchange.accounts import Account, Credentials, load_credentials
from admf.exchange.config import ExchangeConfig
from admf.exchange.engine import ExchangeCore
from admf.exchange.faults import Faults
from admf.exchange.journal import Journal
from admf.exchange.marketdata import (
    DataClient,
    MarketDataHub,
    check_subscription,
    error,
)
from admf.exchange.ratelimit import RateLimiter
from admf.exchange.rest import (
    ACCOUNT,
    TradingApi,
    error_response,
    http_error,
    json_response,
    read_json,
)
from admf.exchange.streams import MALFORMED_FRAME, StreamClient
from admf.exchange.wire import (
    CODE_INTERNAL,
    CODE_NOT_FOUND,
    ApiError,
    rfc3339,
    unprocessable,
)

log = logging.getLogger("admf.exchange")

_PLAY_CHUNK = 256
"""Events played per step when replaying as fast as possible (then the loop serves)."""
_MAX_WAIT = 0.05
"""Longest sleep of the real-time replay (so a pause or a speed change takes effect)."""
_FLUSH_SECONDS = 0.005
_FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight", "test")


class ExchangeServer:
    """The paper exchange as a running service; an async context manager::

        creds = [(Credentials(key, secret), None)]  # (key pair, cash or None: the config's)
        async with ExchangeServer(ExchangeConfig(data=("orcl.csv",), paused=True), creds) as ex:
            client = TradingClient(key, secret, url_override=ex.url)

    Without ``credentials`` the accounts come from ``config.accounts_file``, or one key pair
    is generated (``ex.core.accounts``). ``faults`` sets fault switches at start. ``step``
    plays market events at once; ``url``, ``stream_url`` and ``data_url`` are what clients
    connect to.
    """

    def __init__(
        self,
        config: ExchangeConfig,
        credentials: list[tuple[Credentials, float | None]] | None = None,
        faults: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        if credentials is None:
            if config.accounts_file is not None:
                credentials = load_credentials(config.accounts_file)
            else:
                credentials = [(Credentials.generate(), None)]
        self.faults = Faults()
        self.faults.update(faults or {})
        run_config = {
            "command": "exchange",
            "data": list(config.data),
            "seed": config.seed,
            "speed": config.speed,
            "as_fast_as_possible": config.as_fast_as_possible,
            "fee_rate": config.fee_rate,
            "partial_fill_rate": config.partial_fill_rate,
        }
        self.journal = Journal(config.log_dir, run_config, config.seed)
        try:
            self.core = ExchangeCore(config, credentials, self.journal)
        except BaseException:
            self.journal.discard()  # the data was refused: leave no empty run behind
            raise
        self.hub = MarketDataHub()
        self.hub.matchers = self.core.matchers
        self.hub.offer = self._offer
        self.hub.symbols = {i.number: i.symbol for i in self.core.instruments}
        self.hub.intervals = {i.number: i.interval_ns for i in self.core.instruments}
        self.core.market_data.append(self.hub.on_chunk)
        self.core.book_events.append(self.hub.on_book_event)
        self.core.trade_updates.append(self._on_trade_update)
        self.listeners: dict[str, list[StreamClient]] = {}
        self._held_update: dict[StreamClient, bytes] = {}
        """A trade update held back by the reorder fault, per client, until the next."""
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        self.paused = config.paused
        self.speed = config.speed
        self.as_fast_as_possible = config.as_fast_as_possible
        self._wake = asyncio.Event()
        self._anchor: tuple[float, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.rest = TradingApi(self)
        self.app = self._make_app()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL for TradingClient/StockHistoricalDataClient ``url_override``."""
        return f"http://{self.config.host}:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/stream"

    def data_url(self, feed: str = "iex") -> str:
        return f"ws://{self.config.host}:{self.port}/v2/{feed}"

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._replay()), loop.create_task(self._flusher())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        clients = [c for cs in self.listeners.values() for c in cs]
        clients += [c.stream for c in self.hub.clients]
        for client in clients:
            client.abort()
        if self._runner is not None:
            await self._runner.cleanup()
        self.journal.close()

    async def __aenter__(self) -> ExchangeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the replay -----------------------------------------------------------------------

    def step(self, events: int) -> int:
        """Plays the next ``events`` market events at once (any mode); returns how many."""
        played = self.core.play(events)
        self.hub.flush()
        self.journal.flush()
        return played

    async def _replay(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.core.finished:
            if self.paused:
                self._anchor = None
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.as_fast_as_possible:
                self.step(_PLAY_CHUNK)
                await asyncio.sleep(0)
                continue
            timeline = self.core.timeline
            if self._anchor is None:
                self._anchor = (loop.time(), int(timeline["ts"][self.core.position]))
            wall0, data0 = self._anchor
            data_now = data0 + int((loop.time() - wall0) * self.speed * 1e9)
            end = self.core.position
            while end < len(timeline) and int(timeline["ts"][end]) <= data_now:
                end += 1
            if end > self.core.position:
                self.step(end - self.core.position)
                continue
            due = (int(timeline["ts"][end]) - data0) / 1e9 / self.speed + wall0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(max(due - loop.time(), 0), _MAX_WAIT))

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_SECONDS)
            self.journal.flush()

    # -- trade updates --------------------------------------------------------------------

    def _on_trade_update(self, key_id: str, data: dict[str, Any]) -> None:
        clients = self.listeners.get(key_id)
        if not clients:
            return
        frame = json.dumps({"stream": "trade_updates", "data": data}).encode()
        for client in list(clients):
            if client.closed:
                clients.remove(client)
                continue
            self._send_update(client, frame, data)

    def _send_update(self, client: StreamClient, frame: bytes, data: dict[str, Any]) -> None:
        order_id = data["order"]["id"]
        if self.faults.take("reorder_trade_updates"):
            self.record_fault("reorder_trade_updates", order=order_id, event=data["event"])
            self._held_update[client] = frame
            return
        self._offer(client, frame, "trade_updates")
        if self.faults.take("duplicate_trade_updates"):
            self.record_fault("duplicate_trade_updates", order=order_id, event=data["event"])
            self._offer(client, frame, "trade_updates")
        late = self._held_update.pop(client, None)
        if late is not None:
            self._offer(client, late, "trade_updates")

    def _offer(self, client: StreamClient, frame: bytes | str, stream: str) -> bool:
        if self.faults.take("drop_connection"):
            self.record_fault("drop_connection", stream=stream)
            client.drop()
            return False
        if self.faults.take("malformed_frames"):
            self.record_fault("malformed_frames", stream=stream)
            frame = MALFORMED_FRAME
        return client.offer(frame)

    def record_fault(self, name: str, **details: Any) -> None:
        """Records an injected fault in the exchange's log."""
        self.journal.fault(self.core.now, name, **details)

    def _overflow(self, client: StreamClient) -> None:
        self.journal.error(self.core.now, "slow client cut off")

    # -- the app --------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._errors, self._http_faults, self._auth, self._rate_limit],
            client_max_size=1 << 20,
        )
        r = app.router
        self.rest.add_routes(r)
        r.add_get("/stream", self.trade_stream)
        r.add_get("/v2/{feed}", self.data_stream)
        r.add_get("/admin/faults", self.admin_get_faults)
        r.add_patch("/admin/faults", self.admin_set_faults)
        r.add_get("/admin/state", self.admin_state)
        r.add_post("/admin/replay", self.admin_replay)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as exc:
            return error_response(exc)
        except AdmfError as exc:
            return error_response(unprocessable(str(exc)))
        except web.HTTPMethodNotAllowed:
            return json_response({"code": 40510000, "message": "method not allowed"}, 405)
        except web.HTTPNotFound:
            return json_response({"code": CODE_NOT_FOUND, "message": "endpoint not found"}, 404)
        except web.HTTPRequestEntityTooLarge:
            return json_response({"code": 41310000, "message": "request body is too large"}, 413)
        except web.HTTPException as exc:
            return json_response({"code": exc.status * 100_000, "message": exc.reason}, exc.status)
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return json_response({"code": CODE_INTERNAL, "message": "internal server error"}, 500)

    @web.middleware
    async def _http_faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            request.path.startswith("/v2/")
            and self.faults.http_status
            and self.faults.take("http_count")
        ):
            status = self.faults.http_status
            self.record_fault("http_status", status=status, path=request.path)
            return http_error(status)
        response: web.StreamResponse = await handler(request)
        return response

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/v2/") and request.path != "/v2/" and not _is_stream(request):
            key = request.headers.get("APCA-API-KEY-ID")
            secret = request.headers.get("APCA-API-SECRET-KEY")
            basic = request.headers.get("Authorization", "")
            if key is None and basic.startswith("Basic "):
                with contextlib.suppress(ValueError):
                    key, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            if not key or secret is None:
                return json_response({"message": "unauthorized"}, 401)
            account = self.core.authenticate(key, secret)
            if account is None:
                return json_response({"message": "forbidden."}, 403)
            request[ACCOUNT] = account
        response: web.StreamResponse = await handler(request)
        return response

    @web.middleware
    async def _rate_limit(self, request: web.Request, handler: Any) -> web.StreamResponse:
        account = request.get(ACCOUNT)
        if self.limiter is None or account is None:
            response: web.StreamResponse = await handler(request)
            return response
        budget = self.limiter.take(account.credentials.key_id)
        if not budget.allowed:
            refused = http_error(429)
            refused.headers.update(budget.headers())
            return refused
        try:
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc)
        response.headers.update(budget.headers())
        return response

    # -- streams --------------------------------------------------------------------------

    async def _receive(self, ws: web.WebSocketResponse, timeout: float | None) -> Any:
        """The next client message, decoded (JSON text, JSON or MessagePack binary); None
        when the connection ended; ``ValueError`` when it does not decode."""
        msg = await ws.receive(timeout=timeout)
        if msg.type == WSMsgType.TEXT:
            return json.loads(msg.data)
        if msg.type == WSMsgType.BINARY:
            data: bytes = msg.data
            try:
                return json.loads(data)
            except (ValueError, UnicodeDecodeError):
                return msgpack.unpackb(data)
        return None

    async def trade_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        client = StreamClient(ws, request, self.config.client_buffer, self._overflow)
        account: Account | None = None
        listening: list[str] = []
        try:
            while True:
                try:
                    msg = await self._receive(ws, None if account else self.config.auth_timeout)
                except TimeoutError:
                    client.offer(
                        _trade_frame(
                            "authorization",
                            {
                                "status": "unauthorized",
                                "action": "authenticate",
                                "message": "auth timeout",
                            },
                        )
                    )
                    break
                except (ValueError, msgpack.ExtraData, msgpack.UnpackException):
                    client.offer(_trade_frame("error", {"code": 400, "message": "invalid syntax"}))
                    continue
                if msg is None:
                    break
                action = msg.get("action") if isinstance(msg, dict) else None
                data = msg.get("data") if isinstance(msg, dict) else None
                if action in ("authenticate", "auth"):
                    d = data if isinstance(data, dict) else msg
                    key = d.get("key_id", d.get("key"))
                    secret = d.get("secret_key", d.get("secret"))
                    found = self.core.authenticate(
                        key if isinstance(key, str) else None,
                        secret if isinstance(secret, str) else None,
                    )
                    status = "authorized" if found else "unauthorized"
                    client.offer(
                        _trade_frame("authorization", {"status": status, "action": "authenticate"})
                    )
                    if found is None:
                        break
                    account = found
                elif action == "listen":
                    if account is None:
                        client.offer(
                            _trade_frame(
                                "authorization", {"status": "unauthorized", "action": "listen"}
                            )
                        )
                        continue
                    streams = data.get("streams") if isinstance(data, dict) else None
                    if not isinstance(streams, list) or not all(
                        isinstance(s, str) for s in streams
                    ):
                        client.offer(
                            _trade_frame("error", {"code": 400, "message": "invalid syntax"})
                        )
                        continue
                    listening = [s for s in streams if s == "trade_updates"]
                    clients = self.listeners.setdefault(account.credentials.key_id, [])
                    if listening and client not in clients:
                        clients.append(client)
                    elif not listening and client in clients:
                        clients.remove(client)
                    client.offer(_trade_frame("listening", {"streams": listening}))
                else:
                    client.offer(_trade_frame("error", {"code": 400, "message": "invalid syntax"}))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if account is not None:
                clients = self.listeners.get(account.credentials.key_id, [])
                if client in clients:
                    clients.remove(client)
            await self._finish_stream(client)
        return ws

    async def _finish_stream(self, client: StreamClient) -> None:
        # Let the writer send what is queued (the last error frame), briefly.
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(0.2):
                while not client.queue.empty() and not client.closed:
                    await asyncio.sleep(0.005)
        await client.close()
        with contextlib.suppress(Exception):
            await client.ws.close()

    async def data_stream(self, request: web.Request) -> web.WebSocketResponse:
        feed = request.match_info["feed"]
        if feed not in _FEEDS:
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 22)
        await ws.prepare(request)
        use_msgpack = "msgpack" in request.headers.get("Content-Type", "")
        client = DataClient(
            StreamClient(ws, request, self.config.client_buffer, self._overflow),
            use_msgpack,
        )
        send = client.stream.offer
        send(client.encode([{"T": "success", "msg": "connected"}]))
        try:
            while True:
                try:
                    msg = await self._receive(
                        ws, None if client.key_id else self.config.auth_timeout
                    )
                except TimeoutError:
                    send(client.encode([error(404)]))
                    break
                except (ValueError, msgpack.ExtraData, msgpack.UnpackException):
                    send(client.encode([error(400)]))
                    continue
                if msg is None:
                    break
                action = msg.get("action") if isinstance(msg, dict) else None
                if action == "auth":
                    if client.key_id is not None:
                        send(client.encode([error(403)]))
                        continue
                    key, secret = msg.get("key"), msg.get("secret")
                    account = self.core.authenticate(
                        key if isinstance(key, str) else None,
                        secret if isinstance(secret, str) else None,
                    )
                    if account is None:
                        send(client.encode([error(402)]))
                        break
                    key_id = account.credentials.key_id
                    open_here = sum(
                        1 for c in self.hub.clients if c.key_id == key_id and not c.stream.closed
                    )
                    if open_here >= self.config.max_connections:
                        send(client.encode([error(406)]))
                        break
                    client.key_id = key_id
                    self.hub.clients.append(client)
                    send(client.encode([{"T": "success", "msg": "authenticated"}]))
                elif action in ("subscribe", "unsubscribe"):
                    if client.key_id is None:
                        send(client.encode([error(401)]))
                        continue
                    if not check_subscription(msg):
                        send(client.encode([error(400)]))
                        continue
                    before = {k: dict(v) for k, v in client.subs.items()}
                    client.change(action, msg)
                    if client.symbol_count() > self.config.max_symbols:
                        client.subs = before
                        send(client.encode([error(405)]))
                        continue
                    send(client.encode([client.subscription()]))
                else:
                    send(client.encode([error(400)]))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if client in self.hub.clients:
                self.hub.clients.remove(client)
            await self._finish_stream(client.stream)
        return ws

    # -- admin (loopback only) ------------------------------------------------------------

    def _check_admin(self, request: web.Request) -> None:
        if request.remote not in ("127.0.0.1", "::1"):
            raise ApiError(403, 40310000, "the admin endpoint answers loopback clients only")

    async def admin_get_faults(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        return json_response(self.faults.to_json())

    async def admin_set_faults(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        body = await read_json(request)
        self.faults.update(body)
        self.journal.record(Event(int(Kind.CUSTOM), self.core.now), {"faults_set": body})
        return json_response(self.faults.to_json())

    async def admin_state(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        return json_response(self.state())

    def state(self) -> dict[str, Any]:
        return {
            "position": self.core.position,
            "events": len(self.core.timeline),
            "now": rfc3339(self.core.now),
            "finished": self.core.finished,
            "paused": self.paused,
            "speed": self.speed,
            "as_fast_as_possible": self.as_fast_as_possible,
            "faults_injected": len(self.journal.faults),
            "orders": len(self.core.orders),
        }

    async def admin_replay(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise unprocessable("expected a JSON object with an action")
        action = body.get("action")
        if action == "step":
            events = body.get("events", 1)
            if isinstance(events, bool) or not isinstance(events, int) or events < 0:
                raise unprocessable(f"events must be a non-negative integer, got {events!r}")
            self.step(events)
        elif action == "pause":
            self.paused = True
            self._wake.set()
        elif action == "play":
            speed = body.get("speed")
            if speed is not None:
                if isinstance(speed, bool) or not isinstance(speed, int | float) or speed <= 0:
                    raise unprocessable(f"speed must be a positive number, got {speed!r}")
                self.speed = float(speed)
                self.as_fast_as_possible = False
            if body.get("as_fast_as_possible"):
                self.as_fast_as_possible = True
            self.paused = False
            self._anchor = None
            self._wake.set()
        else:
            raise unprocessable(f"action must be step, pause or play, got {action!r}")
        return json_response(self.state())


def _trade_frame(stream: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"stream": stream, "data": data}).encode()


def _is_stream(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"
