"""Random order sequences against the exchange's engine (the real Rust venue and the bar
rule, no network): money and positions always equal the fold of the reported fills, the
incremental bookkeeping (open orders, cash held for them) equals a recount, and a second
run of the same sequence reports the same."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admf.events import SCALE
from admf.exchange.accounts import Credentials
from admf.exchange.config import ExchangeConfig
from admf.exchange.engine import ExchangeCore
from admf.exchange.journal import Journal
from admf.exchange.wire import ApiError, parse_fixed
from tests.exchange.conftest import AAPL_L3, ORCL

CASH = 1_000_000
EXAMPLES = int(os.environ.get("ADMF_EXCHANGE_EXAMPLES", "15"))
"""Random sessions per run; raise it for a longer search."""
PRICES = {"ORCL": (1.8, 2.4), "AAPL": (584.5, 586.5)}

operation = st.one_of(
    st.tuples(st.just("step"), st.integers(1, 120)),
    st.tuples(
        st.just("submit"),
        st.sampled_from(["ORCL", "AAPL"]),
        st.sampled_from(["buy", "sell"]),
        st.sampled_from(["market", "limit", "stop", "stop_limit"]),
        st.sampled_from(["day", "gtc", "ioc", "fok"]),
        st.integers(1, 300),
        st.floats(0, 1),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("replace"), st.integers(0, 50), st.integers(1, 300)),
    st.tuples(st.just("close"), st.sampled_from(["ORCL", "AAPL"])),
)


def _price(symbol: str, where: float) -> str:
    lo, hi = PRICES[symbol]
    return f"{lo + (hi - lo) * where:.2f}"


def run(ops: list[tuple[Any, ...]]) -> tuple[ExchangeCore, list[dict[str, Any]]]:
    config = ExchangeConfig(
        data=(f"ORCL={ORCL}", f"AAPL={AAPL_L3}"), initial_cash=CASH, partial_fill_rate=0.3, seed=3
    )
    core = ExchangeCore(config, [(Credentials("K", "S"), None)], Journal(None, {}, 0))
    updates: list[dict[str, Any]] = []
    core.trade_updates.append(lambda key, data: updates.append(data))
    account = core.accounts["K"]
    for op in ops:
        try:
            if op[0] == "step":
                core.play(op[1])
            elif op[0] == "submit":
                _, symbol, side, type_, tif, qty, where = op
                body: dict[str, Any] = {
                    "symbol": symbol,
                    "side": side,
                    "type": type_,
                    "time_in_force": tif,
                    "qty": str(qty),
                }
                if type_ in ("limit", "stop_limit"):
                    body["limit_price"] = _price(symbol, where)
                if type_ in ("stop", "stop_limit"):
                    body["stop_price"] = _price(symbol, 1 - where)
                core.submit(account, body)
            elif op[0] in ("cancel", "replace"):
                open_orders = core._open_orders(account)
                if open_orders:
                    order = open_orders[op[1] % len(open_orders)]
                    if op[0] == "cancel":
                        core.cancel(account, order.id)
                    else:
                        core.replace(account, order.id, {"qty": str(op[2])})
            elif op[0] == "close":
                core.close_position(account, op[1], None, None)
        except ApiError:
            pass
        check(core, updates)
    return core, updates


def check(core: ExchangeCore, updates: list[dict[str, Any]]) -> None:
    account = core.accounts["K"]
    cash = CASH * SCALE
    positions: dict[str, int] = {}
    filled: dict[str, int] = {}
    for u in updates:
        if u["event"] not in ("fill", "partial_fill"):
            continue
        price, qty = parse_fixed(u["price"], "price"), parse_fixed(u["qty"], "qty")
        symbol, side = u["order"]["symbol"], u["order"]["side"]
        value = price * qty // SCALE
        cash += -value if side == "buy" else value
        positions[symbol] = positions.get(symbol, 0) + (qty if side == "buy" else -qty)
        assert parse_fixed(u["position_qty"], "position_qty") == positions[symbol]
        filled[u["order"]["id"]] = filled.get(u["order"]["id"], 0) + qty
    assert account.cash == cash
    assert {s: p.qty for s, p in account.positions.items()} == {
        s: q for s, q in positions.items() if q
    }
    assert all(q >= 0 for q in positions.values())  # no shorting: sells hold what they sell
    for order in core.orders.values():
        assert order.filled_qty == filled.get(order.id, 0)
        if order.qty is not None:
            assert order.filled_qty <= order.qty
    opened = sorted(o.id for o in core.orders.values() if o.is_open)
    assert sorted(o.id for o in core._open_orders(account)) == opened
    recount = sum(core._cost(o) for o in core._open_orders(account) if o.side == "buy")
    assert abs(core.reserved(account) - recount) <= len(opened)  # rounding per order


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=5, max_size=40))
def test_random_sessions_keep_the_books(ops: list[tuple[Any, ...]]) -> None:
    _, updates = run(ops)
    _, again = run(ops)
    assert again == updates
