"""The ``admf`` command line.

Each subcommand is a module in this package with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; ``COMMANDS`` lists them in the order ``admf --help`` shows them.
Errors caused by the input (``AdmfError``, ``OSError``) and argument errors print one line
and exit 2 (the usage block is ``admf COMMAND --help``); ``--debug`` shows the traceback.
Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from admf.errors import AdmfError

COMMANDS: tuple[str, ...] = (
    "demo",
    "backtest",
    "optimize",
    "replay",
    "live",
    "report",
    "query",
    "verify",
    "plugins",
    "exchange",
)


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"admf.cli.{name}")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (argparse prints the whole usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="admf", description="admf: an event-sourcing trading engine with a Rust core."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for name in COMMANDS:
        module = _load(name)
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def _version() -> str:
    from admf import __version__

    return f"admf {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args._run(args)
        return code
    except (AdmfError, OSError) as exc:
        if args.debug:
            raise
        print(f"admf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"admf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
