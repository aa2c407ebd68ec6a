"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from admf.errors import AdmfError


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``k=v`` strings into a dict (values stay strings; the strategy's config converts)."""
    params: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AdmfError(f"--param takes KEY=VALUE, got {item!r}")
        params[key.strip()] = value.strip()
    return params


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("fills, costs and risk")
    g.add_argument("--cash", type=float, default=100_000.0, help="initial cash (default 100000)")
    g.add_argument(
        "--fill-at",
        choices=("next_open", "close"),
        default="next_open",
        help="bar fills: at the next bar's open (default) or this bar's close",
    )
    g.add_argument("--fee-rate", type=float, default=0.0, help="fee as a fraction of notional")
    g.add_argument("--fee-per-unit", type=float, default=0.0, help="fee per unit traded")
    g.add_argument("--fee-minimum", type=float, default=0.0, help="minimum fee per fill")
    g.add_argument("--slippage-bps", type=float, default=0.0, help="slippage of market fills")
    g.add_argument("--lot-size", type=float, default=1.0, help="bar venue: quantity step (1)")
    g.add_argument("--tick-size", type=float, help="bar venue: limit price step (any)")
    g.add_argument("--max-position", type=float, help="risk: max absolute position (units)")
    g.add_argument("--max-order-qty", type=float, help="risk: max order size (units)")
    g.add_argument("--max-notional", type=float, help="risk: max order notional")
    g.add_argument("--max-orders-per-second", type=int, help="risk: max order rate")
    g.add_argument("--daily-loss-limit", type=float, help="risk: loss that trips the kill switch")
    g.add_argument("--maker-fee", type=float, default=0.0, help="book venue: passive fee rate")
    g.add_argument("--taker-fee", type=float, default=0.0, help="book venue: aggressive fee rate")
    g.add_argument("--latency-to-venue-ns", type=int, default=0, help="book venue: command delay")
    g.add_argument("--latency-to-strategy-ns", type=int, default=0, help="book venue: answer delay")
    g.add_argument("--seed", type=int, default=0, help="the run's random seed (default 0)")
    g.add_argument(
        "--on-error",
        choices=("continue", "stop"),
        default="continue",
        help="when a handler raises: log it and go on (default) or stop the run",
    )


def settings_from(args: argparse.Namespace) -> Any:
    from admf.backtest import BacktestSettings
    from admf.risk import RiskLimits

    return BacktestSettings(
        initial_cash=args.cash,
        fill_at=args.fill_at,
        fee_rate=args.fee_rate,
        fee_per_unit=args.fee_per_unit,
        fee_minimum=args.fee_minimum,
        slippage_bps=args.slippage_bps,
        lot_size=args.lot_size,
        tick_size=args.tick_size,
        risk=RiskLimits(
            max_order_qty=args.max_order_qty,
            max_notional=args.max_notional,
            max_position=args.max_position,
            max_orders_per_second=args.max_orders_per_second,
            daily_loss_limit=args.daily_loss_limit,
        ),
        seed=args.seed,
        on_error=args.on_error,
        maker_fee=args.maker_fee,
        taker_fee=args.taker_fee,
        latency_to_venue_ns=args.latency_to_venue_ns,
        latency_to_strategy_ns=args.latency_to_strategy_ns,
    )


def print_result(result: Any, title: str) -> None:
    """The summary table of a backtest, its hash and where its log is."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=title, show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.summary.items():
        table.add_row(key, str(value))
    console.print(table)
    if result.run_dir is not None:
        console.print(f"log: {result.run_dir}")
