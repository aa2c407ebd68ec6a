"""The exchange's network service: Alpaca's trading REST API, the trade_updates stream, the
market-data stream and historical bars, over one asyncio event loop.

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
import numpy as np
from aiohttp import WSMsgType, web

from admf._core import Event
from admf.errors import AdmfError
from admf.events import Kind
from admf.exchange.accounts import Account, Credentials
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
from admf.exchange.streams import MALFORMED_FRAME, StreamClient
from admf.exchange.wire import (
    CODE_BAD_REQUEST,
    CODE_INTERNAL,
    CODE_NOT_FOUND,
    CODE_RATE_LIMITED,
    ApiError,
    fixed_to_str,
    parse_fixed,
    parse_time,
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
_ACCOUNT_KEY: web.RequestKey[Account] = web.RequestKey("account", Account)
_HTTP_MESSAGES = {
    429: (CODE_RATE_LIMITED, "rate limit exceeded"),
    500: (CODE_INTERNAL, "internal server error"),
    502: (50210000, "bad gateway"),
    503: (50310000, "service unavailable"),
    504: (50410000, "gateway timeout"),
}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d))


def _error(exc: ApiError) -> web.Response:
    return _json(exc.body(), exc.status)


class ExchangeServer:
    """The paper exchange as a running service; an async context manager::

    async with ExchangeServer(ExchangeConfig(data=("orcl.csv",), paused=True)) as ex:
        client = TradingClient(key, secret, url_override=ex.url)
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
                from admf.exchange.accounts import load_credentials

                credentials = load_credentials(config.accounts_file)
            else:
                credentials = [(Credentials.generate(), None)]
        self.credentials = [c for c, _ in credentials]
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
        self.core = ExchangeCore(config, credentials, self.journal)
        self.hub = MarketDataHub()
        self.hub.matchers = self.core.matchers
        self.hub.offer = self._offer
        self.core.market_data.append(self.hub.on_event)
        self.core.trade_updates.append(self._on_trade_update)
        self.listeners: dict[str, list[StreamClient]] = {}
        self._held_update: dict[str, tuple[StreamClient, bytes]] = {}
        self.paused = config.paused
        self.speed = config.speed
        self.as_fast_as_possible = config.as_fast_as_possible
        self._wake = asyncio.Event()
        self._anchor: tuple[float, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
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
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
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
            self._fault("reorder_trade_updates", order=order_id, event=data["event"])
            self._held_update[str(id(client))] = (client, frame)
            return
        self._offer(client, frame, "trade_updates")
        if self.faults.take("duplicate_trade_updates"):
            self._fault("duplicate_trade_updates", order=order_id, event=data["event"])
            self._offer(client, frame, "trade_updates")
        late = self._held_update.pop(str(id(client)), None)
        if late is not None:
            self._offer(client, late[1], "trade_updates")

    def _offer(self, client: StreamClient, frame: bytes | str, stream: str) -> bool:
        if self.faults.take("drop_connection"):
            self._fault("drop_connection", stream=stream)
            client.drop()
            return False
        if self.faults.take("malformed_frames"):
            self._fault("malformed_frames", stream=stream)
            frame = MALFORMED_FRAME
        return client.offer(frame)

    def _fault(self, name: str, **details: Any) -> None:
        self.journal.fault(self.core.now, name, **details)

    def _overflow(self, client: StreamClient) -> None:
        self.journal.error(self.core.now, "slow client cut off")

    # -- the app --------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._errors, self._http_faults, self._auth],
            client_max_size=1 << 20,
        )
        r = app.router
        r.add_get("/v2/account", self.get_account)
        r.add_post("/v2/orders", self.post_order)
        r.add_get("/v2/orders", self.get_orders)
        r.add_delete("/v2/orders", self.delete_orders)
        r.add_get("/v2/orders:by_client_order_id", self.get_order_by_client_id)
        r.add_get("/v2/orders/{order_id}", self.get_order)
        r.add_patch("/v2/orders/{order_id}", self.patch_order)
        r.add_delete("/v2/orders/{order_id}", self.delete_order)
        r.add_get("/v2/positions", self.get_positions)
        r.add_delete("/v2/positions", self.delete_positions)
        r.add_get("/v2/positions/{symbol:.+}", self.get_position)
        r.add_delete("/v2/positions/{symbol:.+}", self.delete_position)
        r.add_get("/v2/assets", self.get_assets)
        r.add_get("/v2/assets/{symbol:.+}", self.get_asset)
        r.add_get("/v2/clock", self.get_clock)
        r.add_get("/v2/calendar", self.get_calendar)
        r.add_get("/v2/stocks/bars", self.get_bars)
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
            return _error(exc)
        except AdmfError as exc:
            return _error(unprocessable(str(exc)))
        except web.HTTPMethodNotAllowed:
            return _json({"code": 40510000, "message": "method not allowed"}, 405)
        except web.HTTPNotFound:
            return _json({"code": CODE_NOT_FOUND, "message": "endpoint not found"}, 404)
        except web.HTTPRequestEntityTooLarge:
            return _json({"code": 41310000, "message": "request body is too large"}, 413)
        except web.HTTPException as exc:
            return _json({"code": exc.status * 100_000, "message": exc.reason}, exc.status)
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return _json({"code": CODE_INTERNAL, "message": "internal server error"}, 500)

    @web.middleware
    async def _http_faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            request.path.startswith("/v2/")
            and self.faults.http_status
            and self.faults.take("http_count")
        ):
            status = self.faults.http_status
            self._fault("http_status", status=status, path=request.path)
            code, message = _HTTP_MESSAGES[status]
            return _json({"code": code, "message": message}, status)
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
                return _json({"message": "unauthorized"}, 401)
            account = self.core.authenticate(key, secret)
            if account is None:
                return _json({"message": "forbidden."}, 403)
            request[_ACCOUNT_KEY] = account
        response: web.StreamResponse = await handler(request)
        return response

    # -- REST: account, orders ------------------------------------------------------------

    async def get_account(self, request: web.Request) -> web.Response:
        a = request[_ACCOUNT_KEY]
        market = self.core.market_value(a)
        equity = a.cash + market
        power = self.core.buying_power(a)
        m = fixed_to_str
        return _json(
            {
                "id": a.id,
                "account_number": a.number,
                "status": "ACTIVE",
                "crypto_status": "INACTIVE",
                "currency": "USD",
                "buying_power": m(power),
                "regt_buying_power": m(power),
                "daytrading_buying_power": "0",
                "non_marginable_buying_power": m(power),
                "options_buying_power": "0",
                "cash": m(a.cash),
                "accrued_fees": m(a.fees),
                "pending_transfer_in": "0",
                "portfolio_value": m(equity),
                "equity": m(equity),
                "last_equity": m(equity),
                "long_market_value": m(max(market, 0)),
                "short_market_value": m(min(market, 0)),
                "initial_margin": "0",
                "maintenance_margin": "0",
                "last_maintenance_margin": "0",
                "sma": "0",
                "multiplier": "1",
                "pattern_day_trader": False,
                "trading_blocked": False,
                "transfers_blocked": False,
                "account_blocked": False,
                "trade_suspended_by_user": False,
                "shorting_enabled": False,
                "daytrade_count": 0,
                "created_at": rfc3339(a.created_ns),
            }
        )

    async def _body(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.read() or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, CODE_BAD_REQUEST, "request body format is invalid") from None

    async def _ack_delay(self) -> None:
        if self.faults.ack_delay_ms > 0:
            self._fault("ack_delay_ms", ms=self.faults.ack_delay_ms)
            await asyncio.sleep(self.faults.ack_delay_ms / 1000)

    async def post_order(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        await self._ack_delay()
        _, accepted = self.core.submit(request[_ACCOUNT_KEY], body)
        self.journal.flush()
        if self.faults.take("accept_then_504"):
            self._fault("accept_then_504", order=accepted["id"])
            code, message = _HTTP_MESSAGES[504]
            return _json({"code": code, "message": message}, 504)
        return _json(accepted)

    async def get_orders(self, request: web.Request) -> web.Response:
        q = request.query
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise unprocessable(f"status must be open, closed or all, got {status!r}")
        direction = q.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise unprocessable(f"direction must be asc or desc, got {direction!r}")
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            raise unprocessable(f"limit must be an integer, got {q.get('limit')!r}") from None
        if not 1 <= limit <= 500:
            raise unprocessable(f"limit must be in 1..500, got {limit}")
        side = q.get("side")
        if side is not None and side not in ("buy", "sell"):
            raise unprocessable(f"side must be buy or sell, got {side!r}")
        after = parse_time(q["after"], "after") if "after" in q else None
        until = parse_time(q["until"], "until") if "until" in q else None
        symbols = [s.strip().upper() for s in q["symbols"].split(",")] if q.get("symbols") else None
        orders = self.core.list_orders(
            request[_ACCOUNT_KEY], status, limit, after, until, direction, symbols, side
        )
        return _json([o.to_json() for o in orders])

    async def get_order(self, request: web.Request) -> web.Response:
        order = self.core.get_order(request[_ACCOUNT_KEY], request.match_info["order_id"])
        return _json(order.to_json())

    async def get_order_by_client_id(self, request: web.Request) -> web.Response:
        coid = request.query.get("client_order_id")
        if not coid:
            raise unprocessable("client_order_id is required")
        return _json(self.core.get_by_client_id(request[_ACCOUNT_KEY], coid).to_json())

    async def patch_order(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        await self._ack_delay()
        _, accepted = self.core.replace(request[_ACCOUNT_KEY], request.match_info["order_id"], body)
        self.journal.flush()
        return _json(accepted)

    async def delete_order(self, request: web.Request) -> web.Response:
        await self._ack_delay()
        self.core.cancel(request[_ACCOUNT_KEY], request.match_info["order_id"])
        return web.Response(status=204)

    async def delete_orders(self, request: web.Request) -> web.Response:
        return _json(self.core.cancel_all(request[_ACCOUNT_KEY]), 207)

    # -- REST: positions, assets, clock, calendar -----------------------------------------

    async def get_positions(self, request: web.Request) -> web.Response:
        a = request[_ACCOUNT_KEY]
        return _json([self.core.position_json(a, s) for s in sorted(a.positions)])

    async def get_position(self, request: web.Request) -> web.Response:
        a = request[_ACCOUNT_KEY]
        inst = self.core.instrument(request.match_info["symbol"])
        if inst is None:
            raise ApiError(404, CODE_NOT_FOUND, "position does not exist")
        return _json(self.core.position_json(a, inst.symbol))

    async def delete_position(self, request: web.Request) -> web.Response:
        q = request.query
        qty = parse_fixed(q["qty"], "qty") if "qty" in q else None
        pct = parse_fixed(q["percentage"], "percentage") if "percentage" in q else None
        if qty is not None and pct is not None:
            raise unprocessable("give qty or percentage, not both")
        _, accepted = self.core.close_position(
            request[_ACCOUNT_KEY], request.match_info["symbol"], qty, pct
        )
        return _json(accepted)

    async def delete_positions(self, request: web.Request) -> web.Response:
        cancel = request.query.get("cancel_orders", "false").lower() == "true"
        return _json(self.core.close_all(request[_ACCOUNT_KEY], cancel), 207)

    def _asset(self, symbol: str) -> dict[str, Any]:
        inst = self.core.by_symbol[symbol]
        return {
            "id": inst.asset_id,
            "class": "us_equity",
            "exchange": "NASDAQ",
            "symbol": inst.symbol,
            "name": f"{inst.symbol} (admf paper exchange data)",
            "status": "active",
            "tradable": True,
            "marginable": False,
            "shortable": False,
            "easy_to_borrow": False,
            "fractionable": True,
            "maintenance_margin_requirement": 100,
            "attributes": [],
        }

    async def get_assets(self, request: web.Request) -> web.Response:
        status = request.query.get("status", "active")
        asset_class = request.query.get("asset_class", "us_equity")
        if status not in ("active", "inactive"):
            raise unprocessable(f"status must be active or inactive, got {status!r}")
        if status != "active" or asset_class != "us_equity":
            return _json([])
        return _json([self._asset(i.symbol) for i in self.core.instruments])

    async def get_asset(self, request: web.Request) -> web.Response:
        inst = self.core.instrument(request.match_info["symbol"])
        if inst is None:
            raise ApiError(404, CODE_NOT_FOUND, "asset not found")
        return _json(self._asset(inst.symbol))

    def _calendar(self) -> list[tuple[str, int, int]]:
        """(date, first, last event time) per UTC date of the data (bars at their open)."""
        days: dict[str, list[int]] = {}
        for inst in self.core.instruments:
            ts = inst.events["ts"] - inst.interval_ns
            dates = (ts // 86_400_000_000_000).astype(np.int64)
            for day in np.unique(dates):
                mine = ts[dates == day]
                key = rfc3339(int(day) * 86_400_000_000_000)[:10]
                lo, hi = int(mine.min()), int(mine.max())
                if inst.interval_ns >= 86_400_000_000_000:
                    # A daily bar says nothing of the session's hours: the regular ones.
                    lo = int(day) * 86_400_000_000_000 + (13 * 60 + 30) * 60_000_000_000
                    hi = int(day) * 86_400_000_000_000 + 20 * 3_600_000_000_000
                span = days.setdefault(key, [lo, hi])
                span[0], span[1] = min(span[0], lo), max(span[1], hi)
        return [(d, s[0], s[1]) for d, s in sorted(days.items())]

    async def get_calendar(self, request: web.Request) -> web.Response:
        start = request.query.get("start")
        end = request.query.get("end")
        lo = parse_time(start, "start") if start else None
        hi = parse_time(end, "end") if end else None
        out = []
        for date, first, last in self._calendar():
            day = parse_time(date, "date")
            if (lo is not None and day < lo) or (hi is not None and day > hi):
                continue
            out.append(
                {
                    "date": date,
                    "open": rfc3339(first)[11:16],
                    "close": rfc3339(last)[11:16],
                    "session_open": rfc3339(first)[11:16].replace(":", ""),
                    "session_close": rfc3339(last)[11:16].replace(":", ""),
                }
            )
        return _json(out)

    async def get_clock(self, request: web.Request) -> web.Response:
        now = self.core.now
        days = self._calendar()
        next_open = next((first for _, first, _ in days if first > now), None)
        next_close = next((last for _, _, last in days if last >= now), None)
        last_close = days[-1][2] if days else now
        return _json(
            {
                "timestamp": rfc3339(now),
                "is_open": not self.core.finished and not self.paused,
                "next_open": rfc3339(next_open if next_open is not None else last_close),
                "next_close": rfc3339(next_close if next_close is not None else last_close),
            }
        )

    # -- historical bars ------------------------------------------------------------------

    async def get_bars(self, request: web.Request) -> web.Response:
        from admf.exchange.history import bars_page

        return _json(bars_page(self.core, request.query, self.config.bars_page_size))

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
            StreamClient(ws, request, self.config.client_buffer, self._slow_data_client),
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

    def _slow_data_client(self, stream: StreamClient) -> None:
        self._overflow(stream)

    # -- admin (loopback only) ------------------------------------------------------------

    def _check_admin(self, request: web.Request) -> None:
        if request.remote not in ("127.0.0.1", "::1"):
            raise ApiError(403, 40310000, "the admin endpoint answers loopback clients only")

    async def admin_get_faults(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        return _json(self.faults.to_json())

    async def admin_set_faults(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        body = await self._body(request)
        self.faults.update(body)
        self.journal.record(Event(int(Kind.CUSTOM), self.core.now), {"faults_set": body})
        return _json(self.faults.to_json())

    async def admin_state(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        return _json(self.state())

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
        body = await self._body(request)
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
        return _json(self.state())


def _trade_frame(stream: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"stream": stream, "data": data}).encode()


def _is_stream(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def serve_forever(server: ExchangeServer, stop: asyncio.Event) -> None:
    """Runs until ``stop`` is set (the command line sets it on SIGINT/SIGTERM)."""
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()
