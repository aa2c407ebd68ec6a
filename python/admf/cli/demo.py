"""``admf demo``: the main job on bundled real data: a backtest of the SMA-crossover plugin
with its log, report, replay check and SQL. ``--queue`` runs the event queue demo instead."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "run the demo on bundled real data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-output", help="where to write logs and report")
    parser.add_argument("--queue", action="store_true", help="run the event queue demo")
    parser.add_argument("--quick", action="store_true", help="with --queue: a shorter benchmark")


def run(args: argparse.Namespace) -> int:
    from admf.demo import backtest_demo, queue_demo

    if args.queue:
        queue_demo(quick=args.quick)
    else:
        backtest_demo(args.out)
    return 0
