"""The order path as a strategy author meets it: units, lots and ticks, cash that never goes
negative, equity marked to the market, one fold for the portfolio and the results, and order
stages replaced by Python plugins."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from admf import SCALE, Event, Kind
from admf.backtest import BacktestSettings, backtest, load_source, resolve_strategy, run_kernel
from admf.errors import AdmfError
from admf.kernel import Kernel
from admf.risk import Reason, RiskLimits
from tests.integration import strategies

ORCL = str(resources.files("admf.sample") / "orcl-2005-2014.csv")
SMA = "admf_sma_cross:SmaCross"
BUY = "tests.integration.strategies:BuyOnce"


def _strategy(result: Any) -> strategies.BuyOnce:
    # The strategy object is the one the kernel ran (its last component).
    strategy = result.kernel.components[-1]
    assert isinstance(strategy, strategies.BuyOnce)
    return strategy


def test_buy_500_buys_500_shares_and_fills_read_in_units() -> None:
    result = backtest(BUY, [ORCL], {"qty": 500})
    fills = result.of_kind(Kind.FILL)
    assert len(fills) == 1
    assert int(fills["qty"][0]) == 500 * SCALE
    price, qty, fee = _strategy(result).fills[0]
    assert (qty, fee) == (500.0, 0.0)
    assert price == int(fills["price"][0]) / SCALE
    bars = result.of_kind(Kind.BAR)
    assert price == int(bars["aux"][1]) / SCALE  # the next bar's open, in units
    assert result.portfolio.position(1).qty == 500.0


@pytest.mark.parametrize(
    ("params", "settings", "words"),
    [
        ({"qty": 0.5}, {}, "order qty 0.5 of instrument 1 is not a positive multiple of its lot"),
        ({"qty": 150}, {"lot_size": 100}, "order qty 150 of instrument 1"),
        ({"qty": 1e-12}, {}, "order qty 1e-12 of instrument 1 is below the 1e-9 resolution"),
        ({"qty": 1, "price": 10.001}, {"tick_size": 0.01}, "order price 10.001 of instrument 1"),
    ],
)
def test_dust_quantities_and_prices_off_the_tick_are_errors_naming_the_value(
    params: dict[str, float], settings: dict[str, float], words: str
) -> None:
    result = backtest(BUY, [ORCL], params, settings=BacktestSettings(**settings))
    assert len(result.of_kind(Kind.ORDER_SUBMIT)) == 0
    errors = result.of_kind(Kind.ERROR)
    assert len(errors) == 1
    detail = result.payloads[int(errors["seq"][0])]
    assert "AdmfError" in detail["error"]
    assert words in detail["error"]


def test_lot_and_tick_multiples_are_accepted() -> None:
    settings = BacktestSettings(lot_size=100, tick_size=0.01)
    result = backtest(BUY, [ORCL], {"qty": 300, "price": 50.0}, settings=settings)
    fills = result.of_kind(Kind.FILL)
    assert len(fills) == 1
    assert int(fills["qty"][0]) == 300 * SCALE


def test_fees_never_drive_cash_below_zero_with_value_sized_orders() -> None:
    # The case from the issue: 0.1% fees and orders sized by all the cash reached -661.86.
    result = backtest(SMA, [ORCL], settings=BacktestSettings(fee_rate=0.001))
    fills = result.of_kind(Kind.FILL)
    assert len(fills) > 20
    curve = result.analysis.curve
    assert curve.cash.min() >= 0
    assert result.portfolio.cash_fx >= 0
    # Each buy is the most whole shares the cash affords with its fee: one more would not fit.
    cash = result.portfolio.initial_cash_fx
    for f in fills:
        price, qty, fee = int(f["price"]), int(f["qty"]), int(f["aux"])
        cost = price * qty // SCALE
        if f["side"] == 1:
            assert cost + fee <= cash
            more = price * (qty + SCALE) // SCALE
            assert more + round(more * 0.001) > cash
            cash -= cost + fee
        else:
            cash += cost - fee


def test_a_buy_the_cash_cannot_pay_is_rejected_with_the_amounts() -> None:
    result = backtest(BUY, [ORCL], {"qty": 1_000_000})
    assert len(result.of_kind(Kind.FILL)) == 0
    rejected = result.of_kind(Kind.ORDER_REJECTED)
    assert len(rejected) == 1
    reason = result.payloads[int(rejected["seq"][0])]
    assert reason.startswith("insufficient cash: buying 1000000 at 13.46 leaves ")
    assert "(cash 100000.00)" in reason
    assert result.portfolio.cash == 100_000.0


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"initial_cash": -5}, "initial_cash must be positive, got -5"),
        ({"initial_cash": float("nan")}, "initial_cash must be a finite number"),
        ({"fee_rate": -0.001}, "fee_rate must be >= 0"),
        ({"fill_at": "open"}, "fill_at must be one of next_open, close, got 'open'"),
        ({"lot_size": 0}, "lot_size must be positive"),
        ({"tick_size": -1}, "tick_size must be positive"),
    ],
)
def test_settings_are_checked_before_a_run(settings: dict[str, Any], words: str) -> None:
    with pytest.raises(AdmfError, match=words.replace("(", r"\(")):
        BacktestSettings(**settings)


def test_equity_is_marked_to_the_market_not_the_last_fill() -> None:
    result = backtest(BUY, [ORCL], {"qty": 100})
    marks = _strategy(result).marks
    assert len(marks) > 2_000
    # The strategy's reading equals cash + position * close on every bar, to the cent.
    for equity, expected in marks:
        assert equity == pytest.approx(expected, abs=0.01)
    assert len({round(e, 2) for e, _ in marks}) > 100  # it moves with the market
    # The result's equity curve, in fixed point, ends where the portfolio does.
    curve = result.analysis.curve
    assert curve.equity.dtype == np.int64
    assert int(curve.equity[-1]) == result.portfolio.equity_fx()


def test_the_results_and_the_portfolio_are_one_fold() -> None:
    result = backtest(SMA, [ORCL], settings=BacktestSettings(fee_rate=0.001))
    a = result.analysis
    pnl = int(a.trades["pnl"].sum()) + int(a.trades["fees"].sum())
    open_qty = result.portfolio.position(1).qty_fx
    if open_qty == 0:
        assert pnl == result.portfolio.realized_fx()
    assert int(a.curve.cash[-1]) == result.portfolio.cash_fx
    assert int(a.positions.qty[-1]) == open_qty


class _PythonRisk:
    """A risk stage written in Python by a user: the engine's order-size rule and its RISK
    events, without the engine."""

    name = "risk"

    def __init__(self, max_qty: int) -> None:
        self.max_qty = max_qty * SCALE
        self.seen = 0

    def process(self, order: Event, kernel: Kernel) -> bool:
        self.seen += 1
        allowed = order.qty_fx <= self.max_qty
        reason = Reason.ALLOWED if allowed else Reason.MAX_ORDER_QTY
        risk = Event(
            Kind.RISK,
            instrument=order.instrument,
            order_id=order.order_id,
            side=order.side,
            price=order.price_fx,
            qty=order.qty_fx,
            aux=int(reason),
        )
        words = f"order qty {order.qty:g} > max {self.max_qty / SCALE:g}"
        kernel.emit(risk, payload=None if allowed else words)
        return allowed


@pytest.mark.parametrize("max_qty", [20, 5])
def test_a_stage_replaced_by_a_python_plugin_gives_identical_outputs(max_qty: int) -> None:
    source = load_source(ORCL, 1)
    settings = BacktestSettings(risk=RiskLimits(max_order_qty=max_qty))
    rebalancer = resolve_strategy("tests.integration.strategies:Rebalancer")
    default, _ = run_kernel(rebalancer, {}, settings, [source.events], [1], None)
    stage = _PythonRisk(max_qty)
    replaced, _ = run_kernel(
        rebalancer, {}, settings, [source.events], [1], None, stages={"risk": stage}
    )
    assert stage.seen == default.kind_counts()["ORDER_SUBMIT"] > 400
    assert replaced.kind_counts() == default.kind_counts()
    assert replaced.output_hash == default.output_hash


FX = "fx"


@pytest.mark.parametrize(
    ("strategy", "params", "settings", "data"),
    [
        (SMA, {}, {"fee_rate": 0.001, "slippage_bps": 5, "fee_minimum": 1.0}, ORCL),
        (SMA, {}, {"fill_at": "close", "fee_per_unit": 0.01}, ORCL),
        ("Greedy", {}, {"initial_cash": 1e7, "risk": RiskLimits(max_position=2_500)}, ORCL),
        ("Greedy", {}, {"initial_cash": 1e7, "risk": RiskLimits(daily_loss_limit=1.0)}, ORCL),
        ("Greedy", {}, {"risk": RiskLimits(max_notional=20_000, max_order_qty=5_000)}, ORCL),
        ("Greedy", {}, {"risk": RiskLimits(kill_switch=True)}, ORCL),
        ("OrderTypes", {}, {"fee_rate": 0.0005}, ORCL),
        ("OrderTypes", {}, {"fill_at": "close"}, ORCL),
        ("BuyOnce", {"qty": 1_000_000}, {}, ORCL),
        ("EmaFlip", {}, {"fee_rate": 0.0001, "risk": RiskLimits(max_position=15_000)}, FX),
    ],
)
def test_the_rust_and_the_python_order_paths_log_the_same_events(
    strategy: str, params: dict[str, Any], settings: dict[str, Any], data: str
) -> None:
    from admf.kernel import Audit
    from tests.bench.fx_bars import fx_minute_bars

    spec = strategy if ":" in strategy else f"tests.integration.strategies:{strategy}"
    cls = resolve_strategy(spec)
    events = fx_minute_bars(20_000) if data == FX else load_source(data, 1).events
    chosen = BacktestSettings(**settings)
    rust, _ = run_kernel(cls, params, chosen, [events], [1], None)
    # Replacing any stage runs every stage in Python.
    python, _ = run_kernel(cls, params, chosen, [events], [1], None, stages={"audit": Audit()})
    assert rust.errors == python.errors == 0
    assert rust.kind_counts() == python.kind_counts()
    assert rust.payloads == python.payloads
    assert rust.output_hash == python.output_hash


def test_sql_positions_and_equity_views_are_the_fold(tmp_path: Any) -> None:
    from admf.log import query

    result = backtest(
        SMA, [ORCL], settings=BacktestSettings(fee_rate=0.001), log_dir=tmp_path, run_id="r"
    )
    a = result.analysis
    equity = query(tmp_path, "SELECT * FROM equity")
    assert equity.num_rows == len(a.curve.ts) == 2_517
    for name in ("equity", "cash", "exposure"):
        column = equity.column(f"{name}_fx").to_numpy()
        np.testing.assert_array_equal(column, getattr(a.curve, name))
    positions = query(tmp_path, "SELECT * FROM positions ORDER BY seq")
    np.testing.assert_array_equal(positions.column("qty_fx").to_numpy(), a.positions.qty)
    assert positions.column("cash_fx").to_numpy()[-1] == result.portfolio.cash_fx
    last = query(tmp_path, "SELECT equity FROM equity ORDER BY seq DESC LIMIT 1")
    assert float(last.column(0)[0].as_py()) == pytest.approx(result.portfolio.equity())


def test_cli_refuses_negative_cash_before_the_run(tmp_path: Any, capsys: Any) -> None:
    from admf.cli import main

    args = ["backtest", "--no-progress", "--strategy", "sma-cross", "--data", ORCL]
    assert main([*args, "--cash", "-5", "--log", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "initial_cash must be positive, got -5" in err
    assert err.count("\n") == 1
    assert not list(tmp_path.iterdir())  # no run directory was made


def test_several_instruments_one_account(tmp_path: Any) -> None:
    from admf.kernel import Audit
    from admf.log import query

    market = Path(__file__).resolve().parents[1] / "data" / "market"
    gbpusd = str(market / "nautilus__fxcm_gbpusd-m1-bid-2012_head300.csv")
    btc = str(market / "nautilus__ftx_btc-perp-20211231-20220201_1m_head300.csv")
    spec = "tests.integration.strategies:TradeEach"
    settings = BacktestSettings(lot_size=0.001, fee_rate=0.0002)  # bitcoin in thousandths
    result = backtest(spec, [gbpusd, btc], settings=settings, log_dir=tmp_path, run_id="two")
    fills = result.of_kind(Kind.FILL)
    assert set(fills["instrument"].tolist()) == {1, 2}
    a = result.analysis
    equity = query(tmp_path, "SELECT equity_fx, exposure_fx FROM equity ORDER BY seq")
    np.testing.assert_array_equal(equity.column("equity_fx").to_numpy(), a.curve.equity)
    np.testing.assert_array_equal(equity.column("exposure_fx").to_numpy(), a.curve.exposure)
    assert int(a.curve.equity[-1]) == result.portfolio.equity_fx()
    # The same run through the Python pipeline logs the same events.
    sources = [load_source(p, i + 1).events for i, p in enumerate([gbpusd, btc])]
    cls = resolve_strategy(spec)
    rust, _ = run_kernel(cls, {}, settings, sources, [1, 2], None)
    python, _ = run_kernel(cls, {}, settings, sources, [1, 2], None, {"audit": Audit()})
    assert rust.output_hash == python.output_hash == result.output_hash


def test_cli_lot_size_lets_value_sized_orders_buy_fractions(tmp_path: Any) -> None:
    from admf.cli import main
    from admf.log import query

    btc = Path(__file__).resolve().parents[1] / "data/market"
    btc = btc / "nautilus__ftx_btc-perp-20211231-20220201_1m_head300.csv"
    args = ["backtest", "--no-progress", "--strategy", "sma-cross", "--data", str(btc)]
    assert main([*args, "--lot-size", "0.001", "--log", str(tmp_path), "--run-id", "b"]) == 0
    qty = query(tmp_path, "SELECT qty_fx FROM fills").column(0).to_numpy()
    assert len(qty) > 0
    assert (qty % (SCALE // 1000) == 0).all()
    assert (qty % SCALE != 0).any()  # fractions of a bitcoin, in thousandths
