"""Alpaca's trading REST API (``/v2``: account, orders, positions, assets, clock, calendar)
and historical bars, as handlers over the exchange's engine.

Handlers run on the server's one event loop and call the engine synchronously; a refusal is
an ``ApiError`` the server's error middleware turns into Alpaca's status and body.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from admf.exchange.accounts import Account
from admf.exchange.history import bars_page
from admf.exchange.market import TradingDay, trading_days
from admf.exchange.wire import (
    ASSET_CLASS,
    ASSET_EXCHANGE,
    CODE_BAD_REQUEST,
    CODE_INTERNAL,
    CODE_RATE_LIMITED,
    ApiError,
    fixed_to_str,
    not_found,
    parse_fixed,
    parse_time,
    rfc3339,
    unprocessable,
)

if TYPE_CHECKING:
    from admf.exchange.server import ExchangeServer

ACCOUNT: Final[web.RequestKey[Account]] = web.RequestKey("account", Account)
"""The authenticated account of a request (set by the server's auth middleware)."""

HTTP_MESSAGES: Final[dict[int, tuple[int, str]]] = {
    429: (CODE_RATE_LIMITED, "rate limit exceeded"),
    500: (CODE_INTERNAL, "internal server error"),
    502: (50210000, "bad gateway"),
    503: (50310000, "service unavailable"),
    504: (50410000, "gateway timeout"),
}
"""Alpaca's code and message for the statuses the exchange answers with on its own."""


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def error_response(exc: ApiError) -> web.Response:
    return json_response(exc.body(), exc.status)


def http_error(status: int) -> web.Response:
    code, message = HTTP_MESSAGES[status]
    return json_response({"code": code, "message": message}, status)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body (None when empty); 400 when it is not JSON."""
    try:
        return json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, CODE_BAD_REQUEST, "request body format is invalid") from None


class TradingApi:
    """The REST handlers of one exchange server."""

    def __init__(self, server: ExchangeServer) -> None:
        self.server = server
        self._days: list[TradingDay] | None = None

    def add_routes(self, r: web.UrlDispatcher) -> None:
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

    # -- REST: account, orders ------------------------------------------------------------

    async def get_account(self, request: web.Request) -> web.Response:
        a = request[ACCOUNT]
        market = self.server.core.market_value(a)
        equity = a.cash + market
        power = self.server.core.buying_power(a)
        m = fixed_to_str
        return json_response(
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

    async def _ack_delay(self) -> None:
        if self.server.faults.ack_delay_ms > 0:
            self.server.record_fault("ack_delay_ms", ms=self.server.faults.ack_delay_ms)
            await asyncio.sleep(self.server.faults.ack_delay_ms / 1000)

    async def post_order(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        await self._ack_delay()
        _, accepted = self.server.core.submit(request[ACCOUNT], body)
        self.server.journal.flush()
        if self.server.faults.take("accept_then_504"):
            self.server.record_fault("accept_then_504", order=accepted["id"])
            return http_error(504)
        return json_response(accepted)

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
        orders = self.server.core.list_orders(
            request[ACCOUNT], status, limit, after, until, direction, symbols, side
        )
        return json_response([o.to_json() for o in orders])

    async def get_order(self, request: web.Request) -> web.Response:
        order = self.server.core.get_order(request[ACCOUNT], request.match_info["order_id"])
        return json_response(order.to_json())

    async def get_order_by_client_id(self, request: web.Request) -> web.Response:
        coid = request.query.get("client_order_id")
        if not coid:
            raise unprocessable("client_order_id is required")
        return json_response(self.server.core.get_by_client_id(request[ACCOUNT], coid).to_json())

    async def patch_order(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        await self._ack_delay()
        _, accepted = self.server.core.replace(
            request[ACCOUNT], request.match_info["order_id"], body
        )
        self.server.journal.flush()
        if self.server.faults.take("accept_then_504"):
            self.server.record_fault("accept_then_504", order=accepted["id"])
            return http_error(504)
        return json_response(accepted)

    async def delete_order(self, request: web.Request) -> web.Response:
        await self._ack_delay()
        self.server.core.cancel(request[ACCOUNT], request.match_info["order_id"])
        return web.Response(status=204)

    async def delete_orders(self, request: web.Request) -> web.Response:
        return json_response(self.server.core.cancel_all(request[ACCOUNT]), 207)

    # -- REST: positions, assets, clock, calendar -----------------------------------------

    async def get_positions(self, request: web.Request) -> web.Response:
        a = request[ACCOUNT]
        return json_response([self.server.core.position_json(a, s) for s in sorted(a.positions)])

    async def get_position(self, request: web.Request) -> web.Response:
        a = request[ACCOUNT]
        inst = self.server.core.instrument(request.match_info["symbol"])
        if inst is None:
            raise not_found("position does not exist")
        return json_response(self.server.core.position_json(a, inst.symbol))

    async def delete_position(self, request: web.Request) -> web.Response:
        q = request.query
        qty = parse_fixed(q["qty"], "qty") if "qty" in q else None
        pct = parse_fixed(q["percentage"], "percentage") if "percentage" in q else None
        if qty is not None and pct is not None:
            raise unprocessable("give qty or percentage, not both")
        _, accepted = self.server.core.close_position(
            request[ACCOUNT], request.match_info["symbol"], qty, pct
        )
        return json_response(accepted)

    async def delete_positions(self, request: web.Request) -> web.Response:
        cancel = request.query.get("cancel_orders", "false").lower() == "true"
        return json_response(self.server.core.close_all(request[ACCOUNT], cancel), 207)

    def _asset(self, symbol: str) -> dict[str, Any]:
        inst = self.server.core.by_symbol[symbol]
        return {
            "id": inst.asset_id,
            "class": ASSET_CLASS,
            "exchange": ASSET_EXCHANGE,
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
        asset_class = request.query.get("asset_class", ASSET_CLASS)
        if status not in ("active", "inactive"):
            raise unprocessable(f"status must be active or inactive, got {status!r}")
        if status != "active" or asset_class != ASSET_CLASS:
            return json_response([])
        return json_response([self._asset(i.symbol) for i in self.server.core.instruments])

    async def get_asset(self, request: web.Request) -> web.Response:
        inst = self.server.core.instrument(request.match_info["symbol"])
        if inst is None:
            raise not_found("asset not found")
        return json_response(self._asset(inst.symbol))

    def _calendar(self) -> list[TradingDay]:
        if self._days is None:
            self._days = trading_days(self.server.core.instruments)
        return self._days

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
        return json_response(out)

    async def get_clock(self, request: web.Request) -> web.Response:
        now = self.server.core.now
        days = self._calendar()
        next_open = next((first for _, first, _ in days if first > now), None)
        next_close = next((last for _, _, last in days if last >= now), None)
        last_close = days[-1][2] if days else now
        return json_response(
            {
                "timestamp": rfc3339(now),
                "is_open": not self.server.core.finished and not self.server.paused,
                "next_open": rfc3339(next_open if next_open is not None else last_close),
                "next_close": rfc3339(next_close if next_close is not None else last_close),
            }
        )

    # -- historical bars ------------------------------------------------------------------

    async def get_bars(self, request: web.Request) -> web.Response:
        return json_response(
            bars_page(self.server.core, request.query, self.server.config.bars_page_size)
        )
