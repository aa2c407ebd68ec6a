"""``admf plugins list``: the installed strategies and adapters, with versions and any load
error (each plugin is imported to check it)."""

from __future__ import annotations

import argparse

NAME = "plugins"
HELP = "list the installed plugins (strategies, adapters) and whether they load"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from admf.plugins import ENTRY_POINT_GROUPS

    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show every plugin with its version and status")
    listing.add_argument(
        "--group",
        choices=sorted(ENTRY_POINT_GROUPS),
        help="only this kind of plugin (default: all)",
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from admf.plugins import DISABLE_AUTOLOAD_ENV, autoload_disabled, list_plugins

    console = Console()
    if autoload_disabled():
        console.print(
            f"plugin autoload is disabled by {DISABLE_AUTOLOAD_ENV}; only module:Class paths load",
            markup=False,
            highlight=False,
        )
        return 0
    plugins = list_plugins(args.group)
    table = Table(title="admf plugins", title_justify="left")
    for column in ("group", "name", "distribution", "version", "target", "status"):
        table.add_column(column, overflow="fold")
    for p in plugins:
        status = "[green]ok[/green]" if p.error is None else f"[red]error[/red]: {_escape(p.error)}"
        table.add_row(
            p.group,
            _escape(p.name),
            _escape(p.distribution or "-"),
            _escape(p.version or "-"),
            _escape(p.target),
            status,
        )
    if plugins:
        console.print(table)
    else:
        console.print("no plugins installed", highlight=False)
    broken = sum(not p.ok for p in plugins)
    if broken:
        console.print(f"{broken} of {len(plugins)} plugins failed to load", highlight=False)
    return 0


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
