"""``admf demo``: the main job on bundled data. Until the backtest exists, it runs the event
queue demo: producers on threads and on asyncio push real trades through the queue, and a
short benchmark against ``queue.Queue`` and ``collections.deque``."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "run the demo on bundled real data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a shorter benchmark")


def run(args: argparse.Namespace) -> int:
    from admf.demo import queue_demo

    queue_demo(quick=args.quick)
    return 0
