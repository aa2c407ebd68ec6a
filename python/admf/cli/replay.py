"""``admf replay``: re-run a recorded run through the kernel and check it is identical."""

from __future__ import annotations

import argparse

from admf.cli._common import parse_params
from admf.cli._results import add_run_arguments, exit_code, print_result

NAME = "replay"
HELP = "replay a recorded run and check every output event is identical"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG", help="the run's log directory (run=<id>)")
    parser.add_argument(
        "--as-backtest",
        action="store_true",
        help="re-run the recorded market data as a new backtest (same or another strategy)",
    )
    parser.add_argument("--strategy", help="with --as-backtest: another strategy")
    parser.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="with --as-backtest: a parameter (repeat); the recorded strategy keeps its other "
        "recorded parameters",
    )
    parser.add_argument("--log-dir", metavar="DIR", help="with --as-backtest: log the new run")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from admf.errors import AdmfError

    if not args.as_backtest and (args.strategy or args.param or args.log_dir or args.allow_errors):
        raise AdmfError("--strategy, --param, --log-dir and --allow-errors go with --as-backtest")
    if args.as_backtest:
        from admf.replay import replay_as_backtest

        params = parse_params(args.param) if args.param else None
        result = replay_as_backtest(args.log, args.strategy, params, args.log_dir)
        print_result(result, f"replay of {args.log} as a backtest of {result.strategy}", NAME)
        from admf.live.record import print_live_diff

        print_live_diff(args.log, result)
        return exit_code(result, NAME, args.allow_errors)
    from admf.replay import replay

    report = replay(args.log)
    print(f"events:   {report.events:,}")
    print(f"recorded: {report.recorded_hash}")
    print(f"replayed: {report.replayed_hash}")
    if report.identical:
        print("identical: every output event matches")
        return 0
    print(f"first difference at {report.first_difference}")
    return 1
