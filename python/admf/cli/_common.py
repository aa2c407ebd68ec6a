"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from admf.errors import AdmfError, SettingError

OPTION_OF_SETTING: dict[str, str] = {
    "initial_cash": "--cash",
    "fill_at": "--fill-at",
    "fee_rate": "--fee-rate",
    "fee_per_unit": "--fee-per-unit",
    "fee_minimum": "--fee-minimum",
    "slippage_bps": "--slippage-bps",
    "risk.max_position": "--max-position",
    "risk.max_order_qty": "--max-order-qty",
    "risk.max_notional": "--max-notional",
    "risk.max_orders_per_second": "--max-orders-per-second",
    "risk.daily_loss_limit": "--daily-loss-limit",
    "maker_fee": "--maker-fee",
    "taker_fee": "--taker-fee",
    "latency_to_venue_ns": "--latency-to-venue-ns",
    "latency_to_strategy_ns": "--latency-to-strategy-ns",
    "seed": "--seed",
    "on_error": "--on-error",
}
"""The command-line option of each setting (ranges live with the settings, in
``admf.backtest.SETTING_RANGES``)."""


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
    """The run's settings, checked before anything runs: a value out of range is one line
    naming the option and its accepted values."""
    try:
        return _settings(args)
    except SettingError as exc:
        option = OPTION_OF_SETTING.get(exc.setting, exc.setting)
        raise AdmfError(
            f"{option}: {exc.value!r} is not accepted; expected {exc.accepted}"
        ) from None


def add_read_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("reading data files")
    g.add_argument(
        "--tz",
        help="time zone of timestamps without one (default UTC) and of daily dates "
        "(default America/New_York)",
    )
    g.add_argument(
        "--session-close",
        default="16:00",
        metavar="HH:MM",
        help="daily bars are stamped at this time on their trading date (default 16:00)",
    )
    g.add_argument(
        "--columns",
        metavar="FIELD=COLUMN,...",
        help="read CSV bars whose header is no known format, e.g. "
        "'timestamp=datetime,close=Adj Close' (stamped=open|close for intraday stamps)",
    )
    g.add_argument(
        "--negative-prices",
        action="store_true",
        help="accept negative prices (spreads, some futures); refused by default",
    )


def read_options_from(args: argparse.Namespace) -> Any:
    """How to read the data files, checked before the run."""
    import datetime as dt
    import zoneinfo

    from admf.data.bars import ColumnMap
    from admf.data.source import ReadOptions

    if args.tz is not None:
        try:
            zoneinfo.ZoneInfo(args.tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise AdmfError(
                f"--tz: {args.tz!r} is not a known time zone (e.g. UTC, Europe/London)"
            ) from None
    try:
        close = dt.time.fromisoformat(args.session_close)
    except ValueError:
        raise AdmfError(
            f"--session-close: {args.session_close!r} is not a time HH:MM[:SS]"
        ) from None
    columns = ColumnMap.parse(args.columns) if args.columns else None
    return ReadOptions(
        tz=args.tz, session_close=close, columns=columns, negative_prices=args.negative_prices
    )


def _settings(args: argparse.Namespace) -> Any:
    from admf.backtest import BacktestSettings
    from admf.risk import RiskLimits

    return BacktestSettings(
        initial_cash=args.cash,
        fill_at=args.fill_at,
        fee_rate=args.fee_rate,
        fee_per_unit=args.fee_per_unit,
        fee_minimum=args.fee_minimum,
        slippage_bps=args.slippage_bps,
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
