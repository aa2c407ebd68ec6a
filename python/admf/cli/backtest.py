"""``admf backtest``: run a strategy over data files, log it, summarize it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from admf.cli._common import (
    add_read_arguments,
    add_settings_arguments,
    parse_params,
    read_options_from,
    settings_from,
)
from admf.cli._results import add_run_arguments, check_output_path, exit_code, print_result
from admf.errors import AdmfError

if TYPE_CHECKING:
    from admf.data import ReadOptions, Source

NAME = "backtest"
HELP = "backtest a strategy on data files (bars, quotes, trades)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strategy", required=True, help="an installed strategy's name, or module:Class"
    )
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="data files")
    parser.add_argument(
        "--tick",
        nargs="+",
        metavar="STEP",
        help="book venue: trade quote files on it with this price step (one STEP for every "
        "quote file, or one per --data file, '-' for none); it fills on the quotes",
    )
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
    data = args.data if args.tick is None else _on_book(args.data, args.tick, read)
    result = backtest(
        args.strategy,
        data,
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


_NO_TICK = "-"


def _on_book(paths: list[str], steps: list[str], read: ReadOptions) -> list[Source]:
    """The data files read, those given a ``--tick`` step on the book venue. Everything is
    checked before the run starts."""
    from admf.data import load_source
    from admf.data.source import on_book
    from admf.events import Kind, to_fixed

    if len(steps) not in (1, len(paths)):
        raise AdmfError(
            f"--tick takes one STEP for every quote file or one per --data file "
            f"({len(paths)}), got {len(steps)}"
        )
    ticks: list[int | None] = []
    for step in steps:
        if step == _NO_TICK and len(steps) > 1:
            ticks.append(None)
            continue
        try:
            tick = to_fixed(float(step))
        except ValueError:
            tick = 0
        if tick <= 0:
            raise AdmfError(f"--tick takes a price step > 0 (0.01), or '-' for none, got {step!r}")
        ticks.append(tick)
    sources = [load_source(p, i, read) for i, p in enumerate(paths, 1)]
    if len(steps) == 1:  # for every quote file
        every = ticks[0]
        ticks = [every if s.kind == Kind.QUOTE and s.tick is None else None for s in sources]
        if not any(ticks):
            raise AdmfError(f"--tick {steps[0]}: none of the data files is quotes")
    try:
        return [s if t is None else on_book(s, t) for s, t in zip(sources, ticks, strict=True)]
    except AdmfError as exc:
        raise AdmfError(f"--tick: {exc}") from None
