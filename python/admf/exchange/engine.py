"""The exchange's state and its business logic: accounts, orders, matching, the replay of
market data. No I/O here: the server (``admf.exchange.server``) calls these methods from its
one event loop, so everything is applied in one order, and the same data, seed and order
sequence give the same ids, fills and reports.

Ids (orders, executions, accounts, assets) are UUIDs drawn from a generator seeded with the
exchange's seed; times are the replay clock's (the time of the last market event played).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from admf._core import Event
from admf.book import BookError, SimVenue
from admf.events import SCALE, EventArray, Flag, Kind, Side
from admf.exchange.accounts import Account, Credentials, make_accounts
from admf.exchange.config import ExchangeConfig
from admf.exchange.journal import Journal
from admf.exchange.market import Instrument, load_instruments, merge
from admf.exchange.matching import BarMatcher, BookMatcher, Report, Working
from admf.exchange.orders import Order, OrderRequest, parse_order
from admf.exchange.wire import (
    ASSET_CLASS,
    ASSET_EXCHANGE,
    CODE_FORBIDDEN,
    CODE_NOT_CANCELABLE,
    ApiError,
    fixed_to_str,
    not_found,
    rfc3339,
    unprocessable,
)
from admf.venue import FeeModel

TradeUpdateSink = Callable[[str, dict[str, Any]], None]
"""Receives (account key id, the ``data`` of a trade_updates message)."""
MarketSink = Callable[[EventArray, int], None]
"""Receives each played chunk of market events and the timeline index of its first."""
BookSink = Callable[[Instrument, np.void, int], None]
"""Receives each book event of a symbol with a book, after the venue applied it."""
_PRICE_KINDS = [int(Kind.BAR), int(Kind.TRADE), int(Kind.BOOK_EXECUTE)]


class ExchangeCore:
    """See the module docstring."""

    def __init__(
        self,
        config: ExchangeConfig,
        credentials: list[tuple[Credentials, float | None]],
        journal: Journal,
    ) -> None:
        self.config = config
        self.journal = journal
        self._ids = random.Random(config.seed)
        files = config.data_files()
        self.instruments = load_instruments(files, [self._uuid() for _ in files])
        self.by_symbol = {i.symbol: i for i in self.instruments}
        self.by_asset_id = {i.asset_id: i for i in self.instruments}
        self.by_number = {i.number: i for i in self.instruments}
        self.timeline = merge(self.instruments)
        self.position = 0
        """How many events of the timeline have been played."""
        self.now = int(self.timeline["ts"][0]) if len(self.timeline) else 0
        self._last_index = {
            i.number: int(np.flatnonzero(self.timeline["instrument"] == i.number)[-1])
            for i in self.instruments
        }
        fill_rng = random.Random(config.seed + 1)
        fees = FeeModel(rate=config.fee_rate)
        self.matchers: dict[int, BarMatcher | BookMatcher] = {}
        for inst in self.instruments:
            if inst.is_book:
                fee = round(config.fee_rate * SCALE)
                venue = SimVenue(inst.tick or 1, inst.number, maker_fee=fee, taker_fee=fee)
                self.matchers[inst.number] = BookMatcher(venue)
            else:
                self.matchers[inst.number] = BarMatcher(fees, fill_rng, config.partial_fill_rate)
        self.last_price: dict[int, int] = {}
        self.last_quote: dict[int, tuple[int, int]] = {}
        self.accounts = make_accounts(
            credentials, config.initial_cash, [self._uuid() for _ in credentials], self.now
        )
        self.orders: dict[str, Order] = {}
        self.by_venue: dict[int, Order] = {}
        self.by_client: dict[tuple[str, str], Order] = {}
        self._open_by_account: dict[str, dict[str, Order]] = {}
        self._open_by_symbol: dict[str, dict[str, Order]] = {}
        self._unpriced_buys: dict[str, dict[str, Order]] = {}
        self._priced: dict[str, int] = {}
        self._next_venue_id = 1
        self.trade_updates: list[TradeUpdateSink] = []
        self.market_data: list[MarketSink] = []
        self.book_events: list[BookSink] = []

    # -- ids, accounts --------------------------------------------------------------------

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._ids.getrandbits(128), version=4)

    def authenticate(self, key_id: str | None, secret: str | None) -> Account | None:
        if not key_id or secret is None:
            return None
        account = self.accounts.get(key_id)
        if account is None or not account.credentials.matches(secret):
            return None
        return account

    def instrument(self, symbol_or_id: str) -> Instrument | None:
        return self.by_symbol.get(symbol_or_id.upper()) or self.by_asset_id.get(symbol_or_id)

    @property
    def finished(self) -> bool:
        return self.position >= len(self.timeline)

    # -- the replay -----------------------------------------------------------------------

    def play(self, n: int) -> int:
        """Plays the next ``n`` market events (fewer at the end); returns how many.

        Matching sees, in time order, every event of a symbol with a book (the venue keeps
        the market's book) and the events of the other symbols while they have working
        orders; the market-data sinks get the whole chunk at once. In the exchange's log
        each report follows the market event that caused it."""
        end = min(self.position + n, len(self.timeline))
        start = self.position
        if end <= start:
            return 0
        chunk = self.timeline[start:end]
        logged = 0
        active = [
            num for num, m in self.matchers.items() if isinstance(m, BookMatcher) or m.working
        ]
        if active:
            numbers = chunk["instrument"]
            for i in np.flatnonzero(np.isin(numbers, active)).tolist():
                event = chunk[i]
                number = int(numbers[i])
                self.now = max(self.now, int(event["ts"]))
                try:
                    reports = self.matchers[number].on_market(event)
                except BookError as exc:
                    # A delta the venue cannot apply (a crossing auction print, say): logged
                    # with its reason, as a backtest does, and the replay goes on.
                    self.journal.market(chunk[logged : i + 1])
                    logged = i + 1
                    self.journal.error(self.now, f"{self.by_number[number].symbol}: {exc}")
                    continue
                if reports:
                    self.journal.market(chunk[logged : i + 1])
                    logged = i + 1
                    self._apply(reports)
                for book_sink in self.book_events:
                    book_sink(self.by_number[number], event, start + i)
        self.journal.market(chunk[logged:])
        self.position = end
        self.now = max(self.now, int(chunk["ts"][-1]))
        self._mark(chunk)
        for sink in self.market_data:
            sink(chunk, start)
        for inst in self.instruments:
            if start <= self._last_index[inst.number] < end:
                self._close_symbol(inst)
        return end - start

    def _mark(self, chunk: EventArray) -> None:
        """The last prices (and quotes) per symbol after a chunk of market events."""
        kinds = chunk["kind"]
        numbers = chunk["instrument"]
        for number in np.unique(numbers).tolist():
            mine = numbers == number
            quotes = np.flatnonzero(mine & (kinds == Kind.QUOTE))
            if len(quotes):
                q = chunk[quotes[-1]]
                bid, ask = int(q["price"]), int(q["aux"])
                self.last_quote[number] = (bid, ask)
                if bid and ask:
                    self.last_price[number] = (bid + ask) // 2
            priced = np.flatnonzero(mine & np.isin(kinds, _PRICE_KINDS))
            if len(priced):
                self.last_price[number] = int(chunk["price"][priced[-1]])

    def _close_symbol(self, inst: Instrument) -> None:
        """The symbol's data ended: its open orders expire (the market is closed for good)."""
        for order in self._open_orders(symbol=inst.symbol):
            self.matchers[inst.number].cancel(order.venue_id)
            self._finish(order, "expired", "the symbol's market data has ended")

    def reference_price(self, inst: Instrument, side: str) -> int:
        quote = self.last_quote.get(inst.number)
        if quote is not None:
            return quote[1] if side == "buy" else quote[0]
        matcher = self.matchers[inst.number]
        if isinstance(matcher, BookMatcher):
            bid, ask = matcher.venue.bbo()
            best = ask if side == "buy" else bid
            if best:
                return best
        return self.last_price.get(inst.number, 0)

    # -- money ----------------------------------------------------------------------------

    def _open_orders(
        self, account: Account | None = None, symbol: str | None = None
    ) -> list[Order]:
        """Open orders in arrival order, of one account and/or one symbol."""
        if account is not None:
            pool = self._open_by_account.get(account.credentials.key_id, {})
        elif symbol is not None:
            pool = self._open_by_symbol.get(symbol, {})
        else:
            pool = {o.id: o for d in self._open_by_account.values() for o in d.values()}
        found = [o for o in pool.values() if symbol is None or o.symbol == symbol]
        found.sort(key=lambda o: o.seq)
        return found

    # Open orders are indexed as they open and close, and the cash held for priced buy
    # orders is kept as a running sum, so a submit costs the same with thousands resting.

    def _opened(self, o: Order) -> None:
        self._open_by_account.setdefault(o.account_key, {})[o.id] = o
        self._open_by_symbol.setdefault(o.symbol, {})[o.id] = o
        if o.side == "buy" and self._price_of(o) is None:
            self._unpriced_buys.setdefault(o.account_key, {})[o.id] = o
        self._reserve(o, 1)

    def _closing(self, o: Order) -> None:
        """Call before an open order's status leaves the open set."""
        self._reserve(o, -1)
        self._open_by_account.get(o.account_key, {}).pop(o.id, None)
        self._open_by_symbol.get(o.symbol, {}).pop(o.id, None)
        self._unpriced_buys.get(o.account_key, {}).pop(o.id, None)

    @staticmethod
    def _price_of(o: Order) -> int | None:
        if o.qty is None:
            return None
        return o.limit_price or o.stop_price or None

    def _reserve(self, o: Order, sign: int) -> None:
        price = self._price_of(o)
        if o.side == "buy" and price is not None:
            key = o.account_key
            self._priced[key] = self._priced.get(key, 0) + sign * o.remaining * price

    def reserved(self, account: Account, exclude: Order | None = None) -> int:
        """Cash held for open buy orders (their remaining size at their price or the
        market's)."""
        key = account.credentials.key_id
        priced = self._priced.get(key, 0)
        if exclude is not None and exclude.is_open and exclude.side == "buy":
            price = self._price_of(exclude)
            if price is not None:
                priced -= exclude.remaining * price
        total = priced // SCALE
        for o in self._unpriced_buys.get(key, {}).values():
            if o is not exclude:
                total += self._cost(o)
        return total

    def _cost(self, o: Order) -> int:
        if o.notional is not None and o.qty is None:
            return o.notional - o.filled_value
        inst = self.by_symbol[o.symbol]
        price = o.limit_price or o.stop_price or self.reference_price(inst, o.side)
        return o.remaining * price // SCALE

    def buying_power(self, account: Account, exclude: Order | None = None) -> int:
        return account.cash - self.reserved(account, exclude)

    def held_for_sells(
        self, account: Account, symbol: str, exclude: Order | None = None
    ) -> tuple[int, list[str]]:
        held, related = 0, []
        for o in self._open_orders(account, symbol):
            if o.side == "sell" and o is not exclude:
                held += o.remaining
                related.append(o.id)
        return held, related

    def market_value(self, account: Account) -> int:
        total = 0
        for symbol, pos in account.positions.items():
            inst = self.by_symbol[symbol]
            total += pos.qty * self.last_price.get(inst.number, 0) // SCALE
        return total

    # -- orders ---------------------------------------------------------------------------

    def _check_funds(self, account: Account, p: OrderRequest, replacing: Order | None) -> None:
        inst = p.inst
        if p.side == "buy":
            price = p.limit or p.stop or self.reference_price(inst, "buy")
            cost = p.notional if p.notional is not None else (p.qty or 0) * price // SCALE
            power = self.buying_power(account, exclude=replacing)
            if cost > power:
                raise ApiError(
                    403,
                    CODE_FORBIDDEN,
                    "insufficient buying power",
                    buying_power=fixed_to_str(power),
                    cost_basis=fixed_to_str(cost),
                )
            return
        pos = account.positions.get(inst.symbol)
        existing = pos.qty if pos is not None else 0
        held, related = self.held_for_sells(account, inst.symbol, exclude=replacing)
        available = max(existing - held, 0)
        wanted = p.qty if p.qty is not None else 0
        if p.notional is not None:
            ref = self.reference_price(inst, "sell")
            wanted = p.notional * SCALE // ref if ref else existing + 1
        if wanted > available:
            raise ApiError(
                403,
                CODE_FORBIDDEN,
                f"insufficient qty available for order (requested: {fixed_to_str(wanted)}, "
                f"available: {fixed_to_str(available)})",
                available=fixed_to_str(available),
                existing_qty=fixed_to_str(existing),
                held_for_orders=fixed_to_str(held),
                related_orders=related,
                symbol=inst.symbol,
            )

    def submit(self, account: Account, body: Any) -> tuple[Order, dict[str, Any]]:
        """Accepts an order (or raises the ``ApiError`` a client gets) and starts matching
        it; returns it and its JSON as accepted (what the client's POST gets back: events
        that follow at once, such as the fill of a marketable order, reach the client on
        its stream, as on Alpaca)."""
        try:
            p = parse_order(body, self.instrument)
            coid = p.client_order_id
            if coid is not None and (account.credentials.key_id, coid) in self.by_client:
                raise unprocessable("client_order_id must be unique")
            self._check_funds(account, p, None)
        except ApiError as exc:
            self._record_refusal(account, body, exc)
            raise
        order = self._new_order(account, p)
        snapshot = order.to_json()
        self._start(order)
        return order, snapshot

    def _new_order(self, account: Account, p: OrderRequest, replaces: Order | None = None) -> Order:
        inst = p.inst
        order_id = str(self._uuid())
        coid = p.client_order_id or str(self._uuid())
        order = Order(
            id=order_id,
            venue_id=self._next_venue_id,
            seq=self._next_venue_id,
            account_key=account.credentials.key_id,
            client_order_id=coid,
            symbol=inst.symbol,
            asset_id=inst.asset_id,
            side=p.side,
            type=p.type,
            time_in_force=p.tif,
            qty=p.qty,
            notional=p.notional,
            limit_price=p.limit,
            stop_price=p.stop,
            extended_hours=p.extended_hours,
            position_intent=p.position_intent,
            created_ns=self.now,
            updated_ns=self.now,
            replaces=replaces.id if replaces is not None else None,
        )
        self._next_venue_id += 1
        self.orders[order.id] = order
        self.by_venue[order.venue_id] = order
        self.by_client[(account.credentials.key_id, coid)] = order
        self._opened(order)
        flags = 0
        if order.type == "market":
            flags |= Flag.MARKET
        if order.time_in_force == "ioc":
            flags |= Flag.IOC
        if order.time_in_force == "fok":
            flags |= Flag.FOK
        self.journal.record(
            Event(
                int(Kind.ORDER_SUBMIT),
                self.now,
                instrument=inst.number,
                order_id=order.venue_id,
                side=int(Side.BUY if order.side == "buy" else Side.SELL),
                price=order.limit_price or 0,
                qty=order.qty or 0,
                aux=order.notional or 0,
                flags=int(flags),
            ),
            {
                "id": order.id,
                "client_order_id": order.client_order_id,
                "account": self.accounts[order.account_key].number,
                "type": order.type,
                "time_in_force": order.time_in_force,
                "stop_price": fixed_to_str(order.stop_price) if order.stop_price else None,
                "replaces": order.replaces,
            },
        )
        return order

    def _record_refusal(self, account: Account, body: Any, exc: ApiError) -> None:
        inst = (
            self.instrument(body["symbol"])
            if isinstance(body, dict) and isinstance(body.get("symbol"), str)
            else None
        )
        self.journal.record(
            Event(int(Kind.ORDER_REJECTED), self.now, instrument=inst.number if inst else 0),
            {
                "account": account.number,
                "status": exc.status,
                "code": exc.code,
                "message": exc.message,
            },
        )

    def _start(self, order: Order) -> None:
        inst = self.by_symbol[order.symbol]
        self._event(order, "new", Kind.ORDER_ACCEPTED, status="new")
        if self.position > self._last_index[inst.number]:
            self._finish(order, "rejected", "the symbol's market data has ended")
            return
        w = Working(
            order.venue_id,
            Side.BUY if order.side == "buy" else Side.SELL,
            order.type,
            order.time_in_force,
            order.qty or 0,
            order.notional or 0,
            order.limit_price or 0,
            order.stop_price or 0,
        )
        self._apply(self.matchers[inst.number].submit(w))

    def _apply(self, reports: list[Report]) -> None:
        for r in reports:
            order = self.by_venue.get(r.venue_id)
            if order is None or not order.is_open:
                continue
            if r.kind == Kind.FILL:
                self._fill(order, r)
            elif r.kind == Kind.ORDER_EXPIRED:
                self._finish(order, "expired", r.reason)
            elif r.kind == Kind.ORDER_REJECTED:
                self._finish(order, "rejected", r.reason)

    def _fill(self, order: Order, r: Report) -> None:
        account = self.accounts[order.account_key]
        inst = self.by_symbol[order.symbol]
        value = r.price * r.qty // SCALE
        pos = account.position(order.symbol)
        if order.side == "buy":
            account.cash -= value + r.fee
            pos.qty += r.qty
            pos.cost += value
        else:
            account.cash += value - r.fee
            if pos.qty:
                pos.cost -= pos.cost * min(r.qty, pos.qty) // pos.qty
            pos.qty -= r.qty
        if pos.qty == 0:
            del account.positions[order.symbol]
        account.fees += r.fee
        self._reserve(order, -1)
        if order.qty is None:  # a notional order, sized at its fill
            order.qty = order.filled_qty + r.qty
        order.filled_qty += r.qty
        order.filled_value += value
        order.updated_ns = self.now
        done = order.filled_qty >= (order.qty or 0)
        if done:
            self._reserve(order, 1)  # _closing takes it off again with the rest
            self._closing(order)
            order.status = "filled"
            order.filled_ns = self.now
        else:
            self._reserve(order, 1)
            order.status = "partially_filled"
        execution_id = str(self._uuid())
        self.journal.record(
            Event(
                int(Kind.FILL),
                self.now,
                instrument=inst.number,
                order_id=order.venue_id,
                side=int(Side.BUY if order.side == "buy" else Side.SELL),
                price=r.price,
                qty=r.qty,
                aux=r.fee,
                flags=int(Flag.OWN),
            ),
            {"execution_id": execution_id},
        )
        self._emit(
            order,
            "fill" if done else "partial_fill",
            price=fixed_to_str(r.price),
            qty=fixed_to_str(r.qty),
            position_qty=fixed_to_str(pos.qty),
            execution_id=execution_id,
        )

    def _finish(self, order: Order, status: str, reason: str | None) -> None:
        kind = {
            "canceled": Kind.ORDER_CANCELED,
            "expired": Kind.ORDER_EXPIRED,
            "rejected": Kind.ORDER_REJECTED,
        }[status]
        if order.is_open:
            self._closing(order)
        order.status = status
        order.reason = reason
        order.updated_ns = self.now
        if status == "canceled":
            order.canceled_ns = self.now
        elif status == "expired":
            order.expired_ns = self.now
        else:
            order.failed_ns = self.now
        self._event(order, status, kind, reason=reason)

    def _event(
        self,
        order: Order,
        event: str,
        kind: Kind,
        *,
        status: str | None = None,
        reason: str | None = None,
    ) -> None:
        if status is not None:
            order.status = status
        self.journal.record(
            Event(
                int(kind),
                self.now,
                instrument=self.by_symbol[order.symbol].number,
                order_id=order.venue_id,
                side=int(Side.BUY if order.side == "buy" else Side.SELL),
                price=order.limit_price or 0,
                qty=order.qty or 0,
            ),
            {"id": order.id, "reason": reason} if reason else {"id": order.id},
        )
        self._emit(order, event)

    def _emit(self, order: Order, event: str, **extra: Any) -> None:
        data: dict[str, Any] = {
            "event": event,
            "order": order.to_json(),
            "timestamp": rfc3339(self.now),
            **extra,
        }
        for sink in self.trade_updates:
            sink(order.account_key, data)

    def get_order(self, account: Account, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.account_key != account.credentials.key_id:
            raise not_found("order not found")
        return order

    def get_by_client_id(self, account: Account, client_order_id: str) -> Order:
        order = self.by_client.get((account.credentials.key_id, client_order_id))
        if order is None:
            raise not_found("order not found")
        return order

    def cancel(self, account: Account, order_id: str) -> None:
        order = self.get_order(account, order_id)
        if not order.is_open:
            raise ApiError(
                422, CODE_NOT_CANCELABLE, f"order is not cancelable (status: {order.status})"
            )
        self.matchers[self.by_symbol[order.symbol].number].cancel(order.venue_id)
        self._finish(order, "canceled", "canceled by the client")

    def cancel_all(self, account: Account) -> list[dict[str, Any]]:
        out = []
        for order in sorted(self._open_orders(account), key=lambda o: o.seq):
            self.cancel(account, order.id)
            out.append({"id": order.id, "status": 200, "body": order.to_json()})
        return out

    def replace(self, account: Account, order_id: str, body: Any) -> tuple[Order, dict[str, Any]]:
        old = self.get_order(account, order_id)
        if not old.is_open:
            raise ApiError(422, CODE_NOT_CANCELABLE, f"order is not open (status: {old.status})")
        p = parse_order(body, self.instrument, replacing=old)
        coid = p.client_order_id
        if coid is not None and (account.credentials.key_id, coid) in self.by_client:
            raise unprocessable("client_order_id must be unique")
        self._check_funds(account, p, old)
        self.matchers[self.by_symbol[old.symbol].number].cancel(old.venue_id)
        new = self._new_order(account, p, replaces=old)
        snapshot = new.to_json()
        self._closing(old)
        old.status = "replaced"
        old.replaced_by = new.id
        old.replaced_ns = self.now
        old.updated_ns = self.now
        self._event(old, "replaced", Kind.ORDER_MODIFIED, reason=f"replaced by {new.id}")
        self._start(new)
        return new, snapshot

    def list_orders(
        self,
        account: Account,
        status: str,
        limit: int,
        after: int | None,
        until: int | None,
        direction: str,
        symbols: list[str] | None,
        side: str | None,
    ) -> list[Order]:
        out = []
        pool = self._open_orders(account) if status == "open" else self.orders.values()
        for o in pool:
            if o.account_key != account.credentials.key_id:
                continue
            if (status == "open" and not o.is_open) or (status == "closed" and o.is_open):
                continue
            if after is not None and o.created_ns <= after:
                continue
            if until is not None and o.created_ns >= until:
                continue
            if symbols and o.symbol not in symbols:
                continue
            if side and o.side != side:
                continue
            out.append(o)
        out.sort(key=lambda o: (o.created_ns, o.seq), reverse=direction == "desc")
        return out[:limit]

    # -- positions ------------------------------------------------------------------------

    def position_json(self, account: Account, symbol: str) -> dict[str, Any]:
        pos = account.positions.get(symbol)
        if pos is None:
            raise not_found("position does not exist")
        inst = self.by_symbol[symbol]
        price = self.last_price.get(inst.number, 0)
        held, _ = self.held_for_sells(account, symbol)
        value = pos.qty * price // SCALE
        pl = value - pos.cost
        return {
            "asset_id": inst.asset_id,
            "symbol": symbol,
            "exchange": ASSET_EXCHANGE,
            "asset_class": ASSET_CLASS,
            "asset_marginable": False,
            "qty": fixed_to_str(pos.qty),
            "qty_available": fixed_to_str(max(pos.qty - held, 0)),
            "avg_entry_price": fixed_to_str(pos.cost * SCALE // pos.qty),
            "side": "long" if pos.qty > 0 else "short",
            "market_value": fixed_to_str(value),
            "cost_basis": fixed_to_str(pos.cost),
            "unrealized_pl": fixed_to_str(pl),
            "unrealized_plpc": f"{pl / pos.cost:.6f}" if pos.cost else "0",
            "unrealized_intraday_pl": fixed_to_str(pl),
            "unrealized_intraday_plpc": f"{pl / pos.cost:.6f}" if pos.cost else "0",
            "current_price": fixed_to_str(price),
            "lastday_price": fixed_to_str(price),
            "change_today": "0",
        }

    def close_position(
        self, account: Account, symbol: str, qty: int | None, percentage: int | None
    ) -> tuple[Order, dict[str, Any]]:
        inst = self.instrument(symbol)
        pos = account.positions.get(inst.symbol) if inst is not None else None
        if inst is None or pos is None:
            raise not_found("position does not exist")
        amount = abs(pos.qty)
        if qty is not None:
            if qty <= 0:
                raise unprocessable("qty must be > 0")
            amount = qty
        elif percentage is not None:
            if not 0 < percentage <= 100 * SCALE:
                raise unprocessable("percentage must be in (0, 100]")
            amount = abs(pos.qty) * percentage // (100 * SCALE)
        body = {
            "symbol": inst.symbol,
            "qty": fixed_to_str(amount),
            "side": "sell" if pos.qty > 0 else "buy",
            "type": "market",
            "time_in_force": "day",
        }
        return self.submit(account, body)

    def close_all(self, account: Account, cancel_orders: bool) -> list[dict[str, Any]]:
        if cancel_orders:
            self.cancel_all(account)
        out = []
        for symbol in sorted(account.positions):
            try:
                _, accepted = self.close_position(account, symbol, None, None)
                out.append({"symbol": symbol, "status": 200, "body": accepted})
            except ApiError as exc:
                out.append({"symbol": symbol, "status": exc.status, "body": exc.body()})
        return out
