"""``admf query LOG_OR_DIR "SQL"``: SQL over event logs (DuckDB), printed as a table or
written as CSV, Parquet or JSON.

The views are those of `admf.log.sql`: events, bars, quotes, trades, book, orders, fills,
signals, risk, errors, custom, runs. ``LOG_OR_DIR`` is one run's directory or a directory of
runs, queried together. Bad SQL prints DuckDB's message and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from admf.errors import AdmfError

NAME = "query"
HELP = "run SQL over event logs (views: events, bars, quotes, trades, orders, fills, ...)"
FORMATS = ("table", "csv", "parquet", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG_OR_DIR", help="a run directory or a directory of runs")
    parser.add_argument("sql", metavar="SQL", help='the query, e.g. "SELECT * FROM bars"')
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    parser.add_argument(
        "--max-rows", type=int, default=100, help="rows a table prints at most (default: 100)"
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _print_table(table: pa.Table, max_rows: int, out: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=None if out.isatty() else 10_000)
    view = Table(show_lines=False, header_style="bold")
    for field in table.schema:
        numeric = (
            pa.types.is_integer(field.type)
            or pa.types.is_floating(field.type)
            or (pa.types.is_decimal(field.type))
        )
        view.add_column(field.name, justify="right" if numeric else "left", no_wrap=True)
    shown = table.slice(0, max_rows)
    columns = [_text(shown.column(i)) for i in range(shown.num_columns)]
    for i in range(shown.num_rows):
        view.add_row(*("" if c[i] is None else c[i] for c in columns))
    console.print(view)
    rows = "row" if table.num_rows == 1 else "rows"
    more = f" (first {max_rows} shown)" if table.num_rows > max_rows else ""
    console.print(f"{table.num_rows} {rows}{more}")


def run(args: argparse.Namespace) -> int:
    from admf.log.sql import query

    table = query(args.log, args.sql)
    fmt: str = args.format
    output = Path(args.output) if args.output else None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if output is None:
            raise AdmfError("--format parquet needs --output FILE")
        pq.write_table(table, output, compression="zstd")
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        safe = table
        for i, field in enumerate(table.schema):
            if pa.types.is_binary(field.type):
                safe = safe.set_column(i, field.name, [_hex(table.column(i))])
        if output is None:
            sink = pa.BufferOutputStream()
            pcsv.write_csv(safe, sink)
            sys.stdout.write(sink.getvalue().to_pybytes().decode())
        else:
            pcsv.write_csv(safe, str(output))
    elif fmt == "json":
        lines = [json.dumps({k: _json_value(v) for k, v in row.items()}) for row in _rows(table)]
        text = "".join(line + "\n" for line in lines)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text)
    elif output is None:
        _print_table(table, args.max_rows, sys.stdout)
    else:
        with open(output, "w") as f:
            _print_table(table, args.max_rows, f)
    return 0


def _text(column: pa.ChunkedArray) -> list[str | None]:
    values: list[str | None]
    if pa.types.is_timestamp(column.type):
        return _iso(column)
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        values = _hex(column).to_pylist()
        return values
    if pa.types.is_decimal(column.type):
        return [None if v is None else format(v, "f") for v in column.to_pylist()]
    try:
        values = column.cast(pa.string()).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = [None if v is None else str(v) for v in column.to_pylist()]
    return values


def _iso(column: pa.ChunkedArray) -> list[str | None]:
    """ISO 8601 UTC strings with all the digits of the unit (nanoseconds stay)."""
    unit = column.type.unit
    raw = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    text = np.datetime_as_string(raw.astype(f"datetime64[{unit}]"), unit=unit)
    return [f"{t}Z" if ok else None for t, ok in zip(text.tolist(), valid.tolist(), strict=True)]


def _hex(column: pa.ChunkedArray) -> pa.Array:
    return pa.array([None if v is None else v.hex() for v in column.to_pylist()], type=pa.string())


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts; timestamps (nanoseconds) as ISO strings, without going through
    datetime (which would drop the nanoseconds)."""
    columns: dict[str, list[Any]] = {}
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_timestamp(field.type):
            columns[field.name] = _iso(column)
        else:
            columns[field.name] = column.to_pylist()
    return [{name: values[i] for name, values in columns.items()} for i in range(table.num_rows)]
