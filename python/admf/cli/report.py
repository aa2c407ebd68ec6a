"""``admf report``: the HTML tear sheet of a logged run, or the page of a sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "report"
HELP = "write the self-contained HTML tear sheet of a logged run (or the page of a sweep)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "log", metavar="LOG", help="the run's log directory (run=<id>), or a sweep directory"
    )
    parser.add_argument(
        "--output", "-o", metavar="HTML", help="where to write it (default: LOG/report.html)"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from admf.log.manifest import Manifest
    from admf.log.verify import verify_log
    from admf.replay import reached_its_end
    from admf.reporting import write_log_report
    from admf.sweep.table import TABLE_NAME

    output = Path(args.output) if args.output else Path(args.log) / "report.html"
    if (Path(args.log) / TABLE_NAME).is_file():
        from admf.sweep.report import write_sweep_report

        print(f"report: {write_sweep_report(args.log, output)}")
        return 0
    finished = reached_its_end(verify_log(args.log), Manifest.read(Path(args.log)).config)
    if not finished:
        print(
            f"admf report: warning: {args.log} did not finish; the report shows what it holds",
            file=sys.stderr,
        )
    path = write_log_report(args.log, output, finished)  # verified once, above
    print(f"report: {path}")
    return 0
