"""What the run commands (``backtest``, ``replay --as-backtest``) share: the summary on the
console, the warnings, the exit code, and the checks of an output path made before a run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from admf.errors import AdmfError

HANDLER_ERRORS_EXIT: int = 1
"""The exit code of a run whose handlers raised (or that stopped early)."""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-errors",
        action="store_true",
        help="exit 0 even when the strategy's handlers raised (they are ERROR events)",
    )


def check_output_path(path: str | None, option: str, created: str | None = None) -> None:
    """Fails before a run when ``path`` cannot be written: a missing or unwritable directory,
    or a directory in its place. ``created`` is a directory the run itself creates (the
    ``--log`` root), accepted as the parent."""
    if path is None:
        return
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        raise AdmfError(f"{option} {target}: is a directory; give a file name")
    if created is not None and parent.resolve() == Path(created).resolve():
        parent = _existing_ancestor(parent)
    elif not parent.is_dir():
        raise AdmfError(f"{option} {target}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise AdmfError(f"{option} {target}: the directory {parent} is not writable")


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def print_result(result: Any, title: str, command: str) -> None:
    """The summary table of a run, where its log is, and its warnings (on stderr)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=title, show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in result.summary.formatted().items():
        table.add_row(key, value)
    console.print(table)
    if result.run_dir is not None:
        console.print(f"log: {result.run_dir}")
    for warning in result.summary.warnings:
        print(f"admf {command}: warning: {warning}", file=sys.stderr)


def exit_code(result: Any, command: str, allow_errors: bool) -> int:
    """0, or ``HANDLER_ERRORS_EXIT`` (with a line on stderr) when the run stopped early or its
    handlers raised and ``--allow-errors`` was not given."""
    summary = result.summary
    if summary.stopped is not None:
        print(f"admf {command}: stopped: {summary.stopped}", file=sys.stderr)
        return HANDLER_ERRORS_EXIT
    if summary.handler_errors and not allow_errors:
        n = summary.handler_errors
        where = "" if result.run_dir is None else f" (admf query {result.run_dir} 'FROM errors')"
        print(
            f"admf {command}: error: the strategy's handlers raised {n:,} "
            f"time{'' if n == 1 else 's'}{where}; --allow-errors exits 0 all the same",
            file=sys.stderr,
        )
        return HANDLER_ERRORS_EXIT
    return 0
