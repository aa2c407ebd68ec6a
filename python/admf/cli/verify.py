"""``admf verify LOG``: check a run's log, file by file, and say what is wrong.

Exit codes: 0 the log is intact and the run finished; 1 the log is damaged (each problem
printed on its own line); 3 the log is intact but the run was not marked finished (killed, or
still being written); 2 not a log or bad arguments.
"""

from __future__ import annotations

import argparse

NAME = "verify"
HELP = "check a run's log (CRCs, hashes, seq continuity, hash chain, manifest)"
EXIT_DAMAGED = 1
EXIT_UNFINISHED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG", help="the run's log directory (run=<id>)")


def run(args: argparse.Namespace) -> int:
    from admf.log.verify import verify_log

    report = verify_log(args.log)
    print(f"log:      {report.path}")
    print(f"run:      {report.run_id or 'unknown'}")
    print(f"events:   {report.events:,}")
    print(f"chain:    {report.chain or 'unknown'}")
    for note in report.notes:
        print(f"note: {note}")
    if report.problems:
        print(f"DAMAGED: {len(report.problems)} problem(s)")
        for problem in report.problems:
            print(f"  - {problem}")
        return EXIT_DAMAGED
    if not report.finished:
        state = "closed" if report.closed else "not closed (a writer is open, or was killed)"
        print(f"intact, but the run did not finish: its log was {state}")
        return EXIT_UNFINISHED
    print("intact: the run finished and every file checks")
    return 0
