"""``admf exchange serve``: the Alpaca-compatible paper exchange over data files."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from admf.errors import AdmfError

if TYPE_CHECKING:
    from admf.exchange import Credentials, ExchangeServer

NAME = "exchange"
HELP = "run the Alpaca-compatible paper exchange over data files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="exchange_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="serve the exchange until interrupted")
    serve.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="FILE",
        help="market data files, each FILE or SYMBOL=FILE (bars, quotes, trades, LOBSTER, MBO)",
    )
    pace = serve.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time)")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="replay without waiting")
    pace.add_argument(
        "--paused", action="store_true", help="start paused (POST /admin/replay steps it)"
    )
    serve.add_argument("--accounts", metavar="FILE", help="TOML file of [[accounts]] key pairs")
    serve.add_argument(
        "--write-accounts",
        metavar="FILE",
        help="without --accounts: write the generated key pair to FILE (mode 0600) "
        "instead of printing it",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument("--log", metavar="DIR", help="write the exchange's event log under DIR")
    serve.add_argument("--seed", type=int, default=0, help="seed of ids and partial fills")
    serve.add_argument("--cash", type=float, default=100_000.0, help="cash per account")
    serve.add_argument("--fee-rate", type=float, default=0.0, help="fee, fraction of notional")
    serve.add_argument(
        "--partial-fill-rate", type=float, default=0.0, help="chance of a partial fill on bars"
    )
    serve.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        metavar="N",
        help="requests per minute per account, then 429 (Alpaca: 200; default 0: off)",
    )
    serve.add_argument(
        "--fault",
        action="append",
        metavar="NAME=VALUE",
        help="a fault switch at start (repeat); see admf.exchange.faults",
    )


def run(args: argparse.Namespace) -> int:
    from admf.exchange import Credentials, ExchangeConfig, ExchangeServer
    from admf.exchange.faults import parse_fault_args

    config = ExchangeConfig(
        data=tuple(args.data),
        speed=args.speed,
        as_fast_as_possible=args.as_fast_as_possible,
        paused=args.paused,
        host=args.host,
        port=args.port,
        accounts_file=args.accounts,
        log_dir=args.log,
        seed=args.seed,
        initial_cash=args.cash,
        fee_rate=args.fee_rate,
        partial_fill_rate=args.partial_fill_rate,
        rate_limit=args.rate_limit,
    )
    faults = parse_fault_args(args.fault)
    generated: Credentials | None = None
    if args.accounts is None:
        if args.write_accounts is not None and Path(args.write_accounts).exists():
            raise AdmfError(f"--write-accounts: {args.write_accounts} exists; not overwriting it")
        generated = Credentials.generate()
    server = ExchangeServer(config, [(generated, None)] if generated else None, faults)
    return asyncio.run(_serve(server, generated, args.write_accounts))


def _hand_over(credentials: Credentials, path: str | None) -> None:
    """Shows a generated key pair once: printed, or written to a private file."""
    if path is None:
        print(f"API key id:     {credentials.key_id}")
        print(f"API secret key: {credentials.secret_key}   (shown once; not stored anywhere)")
        return
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(
            f'[[accounts]]\nkey_id = "{credentials.key_id}"\n'
            f'secret_key = "{credentials.secret_key}"\n'
        )
    print(f"API key id:     {credentials.key_id} (key pair written to {target})")


async def _serve(
    server: ExchangeServer, generated: Credentials | None, write_to: str | None
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        # Only once it serves: a server that could not start shows no key pair.
        if generated is not None:
            _hand_over(generated, write_to)
        symbols = ", ".join(i.symbol for i in server.core.instruments)
        print(f"admf exchange: {symbols} on {server.url}", flush=True)
        print(f"  trade_updates: {server.stream_url}", flush=True)
        print(f"  market data:   {server.data_url('iex')}", flush=True)
        await stop.wait()
    print("admf exchange: stopped", file=sys.stderr)
    return 0
