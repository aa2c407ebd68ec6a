"""``admf report``: the HTML tear sheet of a logged run."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "report"
HELP = "write the self-contained HTML tear sheet of a logged run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG", help="the run's log directory (run=<id>)")
    parser.add_argument(
        "--output", "-o", metavar="HTML", help="where to write it (default: LOG/report.html)"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from admf.log.verify import verify_log
    from admf.reporting import write_log_report

    if not verify_log(args.log).finished:
        print(
            f"admf report: warning: {args.log} did not finish; the report shows what it holds",
            file=sys.stderr,
        )
    output = Path(args.output) if args.output else Path(args.log) / "report.html"
    path = write_log_report(args.log, output)
    print(f"report: {path}")
    return 0
