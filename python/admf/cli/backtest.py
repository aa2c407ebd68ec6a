"""``admf backtest``: run a strategy over data files, log it, summarize it."""

from __future__ import annotations

import argparse

from admf.cli._common import (
    add_read_arguments,
    add_settings_arguments,
    parse_params,
    read_options_from,
    settings_from,
)
from admf.cli._results import add_run_arguments, check_output_path, exit_code, print_result

NAME = "backtest"
HELP = "backtest a strategy on data files (bars, quotes, trades)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strategy", required=True, help="an installed strategy's name, or module:Class"
    )
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="data files")
    parser.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="a strategy parameter (repeat)"
    )
    parser.add_argument("--log", metavar="DIR", help="write the event log under DIR")
    parser.add_argument("--run-id", help="the run's id in the log (default: time + random)")
    parser.add_argument("--report", metavar="HTML", help="also write the HTML tear sheet")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_run_arguments(parser)
    add_settings_arguments(parser)
    add_read_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from admf.backtest import backtest

    check_output_path(args.report, "--report", created=args.log)
    settings = settings_from(args)
    read = read_options_from(args)
    result = backtest(
        args.strategy,
        args.data,
        parse_params(args.param),
        settings,
        log_dir=args.log,
        run_id=args.run_id,
        progress=not args.no_progress,
        read=read,
    )
    print_result(result, f"backtest of {result.strategy}", NAME)
    if args.report:
        from admf.reporting import write_result_report

        path = write_result_report(result, args.report)
        print(f"report: {path}")
    return exit_code(result, NAME, args.allow_errors)
