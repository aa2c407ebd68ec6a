"""``admf live``: run a strategy live, resume a session, or control a running one.

    admf live --strategy NAME --data-adapter NAME --exec-adapter NAME --log DIR
              [--symbol SYM ...] [--data FILE ...] [--param K=V ...] [--adapter-option K=V ...]
              [--tick SYM=STEP ...]
    admf live --resume RUN_DIR
    admf live ctl RUN_DIR pause|resume|flatten|stop

The exit code says how the session ended (0 finished, 1 failed, 3 orders unanswered at
the stop deadline, 130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from admf.cli._common import add_settings_arguments, parse_params, settings_from
from admf.errors import AdmfError

NAME = "live"
HELP = "trade a strategy live (or paper/dry run), resume a session, or control one (ctl)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "ctl",
        nargs="*",
        metavar="ctl RUN_DIR COMMAND",
        help="control a running session: ctl RUN_DIR pause|resume|flatten|stop",
    )
    parser.add_argument("--strategy", help="strategy: plugin name or module:Class")
    parser.add_argument("--data-adapter", help="market data: alpaca, replay or a plugin")
    parser.add_argument(
        "--exec-adapter", default="sim", help="execution: sim (default), alpaca or a plugin"
    )
    parser.add_argument("--symbol", action="append", help="a symbol to trade (repeat)")
    parser.add_argument(
        "--data", action="append", metavar="FILE", help="replay adapter: a data file per symbol"
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="replay adapter: times real time (0: at once)"
    )
    parser.add_argument(
        "--tick",
        action="append",
        metavar="SYMBOL=STEP",
        help="sim: trade SYMBOL on the book venue with this price step (fills on quotes)",
    )
    parser.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter")
    parser.add_argument(
        "--adapter-option", action="append", metavar="KEY=VALUE", help="adapter setting"
    )
    parser.add_argument(
        "--adapter-config",
        metavar="FILE",
        help="TOML file with adapter settings and credentials ([alpaca] key_id, secret_key)",
    )
    parser.add_argument("--log", metavar="DIR", help="where the session's log goes")
    parser.add_argument("--resume", metavar="RUN_DIR", help="resume the session of this log")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--busy-poll",
        type=float,
        metavar="SECONDS",
        help="how long the kernel thread polls for input before it sleeps (default: 200 us, "
        "admf.live.inbox.BUSY_POLL; 0 sleeps at once: less CPU, slower first tick after a "
        "quiet spell)",
    )
    parser.add_argument(
        "--keep-open-orders",
        action="store_true",
        help="on stop, leave open orders at the venue (default: cancel them)",
    )
    parser.add_argument(
        "--stop-deadline",
        type=float,
        default=5.0,
        help="seconds to wait for the venue's answers when stopping (default 5)",
    )
    add_settings_arguments(parser)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = dict(parse_params(args.adapter_option))
    if args.adapter_config:
        if not Path(args.adapter_config).is_file():
            raise AdmfError(f"--adapter-config: no file at {args.adapter_config}")
        options["config"] = args.adapter_config
    if args.data:
        options["data"] = list(args.data)
        options["speed"] = args.speed
    return options


def _ticks(items: list[str] | None) -> dict[str, int]:
    from admf.events import to_fixed

    ticks: dict[str, int] = {}
    for item in items or []:
        symbol, _, step = item.partition("=")
        try:
            tick = to_fixed(float(step))
        except ValueError:
            tick = 0
        if not symbol.strip() or tick <= 0:
            raise AdmfError(f"--tick takes SYMBOL=STEP with a price step > 0 (0.01), got {item!r}")
        ticks[symbol.strip().upper()] = tick
    return ticks


def _symbols(args: argparse.Namespace) -> tuple[str, ...]:
    if args.symbol:
        return tuple(s.upper() for s in args.symbol)
    if args.data:
        return tuple(Path(p).name.split(".")[0].split("-")[0].upper() for p in args.data)
    raise AdmfError("--symbol: name at least one symbol to trade (or give --data files)")


def run(args: argparse.Namespace) -> int:
    from admf.live.session import LiveSession, LiveSpec, run_session

    if args.ctl:
        if len(args.ctl) != 3 or args.ctl[0] != "ctl":
            raise AdmfError("usage: admf live ctl RUN_DIR pause|resume|flatten|stop")
        from admf.live.control import send_command

        send_command(args.ctl[1], args.ctl[2])
        print(f"{args.ctl[2]}: taken by the session of {args.ctl[1]}")
        return 0
    if args.resume:
        session = LiveSession.resume(args.resume)
    else:
        missing = [
            name
            for name, value in (
                ("--strategy", args.strategy),
                ("--data-adapter", args.data_adapter),
                ("--log", args.log),
            )
            if not value
        ]
        if missing:
            raise AdmfError(f"{', '.join(missing)} required (or --resume RUN_DIR)")
        spec = LiveSpec(
            strategy=args.strategy,
            symbols=_symbols(args),
            data_adapter=args.data_adapter,
            exec_adapter=args.exec_adapter,
            params=parse_params(args.param),
            settings=settings_from(args),
            options=_options(args),
            ticks=_ticks(args.tick),
            cancel_on_stop=not args.keep_open_orders,
            stop_deadline=args.stop_deadline,
            duration=args.duration,
            # Given or not: the default is the node's own (not imported here, so that
            # building the parser does not load the live package).
            **({} if args.busy_poll is None else {"busy_poll": args.busy_poll}),
        )
        session = LiveSession.create(spec, args.log)
    print(f"log: {session.run_dir}", flush=True)
    ending = run_session(session)
    kernel = session.node.kernel
    print(
        f"ended: {ending.name.lower()} ({session.reason or 'no reason given'}); "
        f"{kernel.core.next_seq - 1:,} events, {session.node.portfolio.fills:,} fills, "
        f"{kernel.errors:,} errors"
    )
    return int(ending)
