"""Reading a log's rows in seq order: sealed files (checked before and after each read),
then the live tail's batches; and one table from parts whose columns grew."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from admf.errors import AdmfError
from admf.log.commit import first_seq
from admf.log.payload import LOG_SCHEMA
from admf.log.seal import SealedFile


def unify(tables: Sequence[pa.Table | pa.RecordBatch]) -> pa.Table:
    """One table from tables whose columns may differ (a newer schema added columns): missing
    columns read as null; the log's columns come first, extra ones in order of appearance."""
    parts = [t if isinstance(t, pa.Table) else pa.Table.from_batches([t]) for t in tables]
    if not parts:
        return LOG_SCHEMA.empty_table()
    first = parts[0].schema
    if all(p.schema == first for p in parts):
        return pa.concat_tables(parts)
    try:
        table = pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise AdmfError(f"the log's segments have incompatible columns: {exc}") from exc
    order = [n for n in LOG_SCHEMA.names if n in table.schema.names]
    order += [n for n in table.schema.names if n not in order]
    return table.select(order)


def slice_rows(
    batches: Sequence[pa.RecordBatch], start: int, stop: int | None
) -> Iterator[pa.RecordBatch]:
    """The rows of seq-ordered ``batches`` with ``start <= seq < stop``."""
    for batch in batches:
        first = first_seq(batch)
        last = first + batch.num_rows - 1
        if (stop is not None and first >= stop) or last < start:
            continue
        a = max(start, first) - first
        b = batch.num_rows if stop is None else min(stop, last + 1) - first
        yield batch.slice(a, b - a)


def iter_rows(
    sealed: Sequence[SealedFile],
    tail: Sequence[pa.RecordBatch],
    start: int | None,
    stop: int | None,
) -> Iterator[pa.RecordBatch]:
    """The rows with ``start <= seq < stop`` of a log's sealed files and tail batches."""
    lo = 1 if start is None else max(1, start)
    for s in sealed:
        if (stop is not None and s.first_seq >= stop) or s.last_seq < lo:
            continue
        table = s.read()
        a = max(lo, s.first_seq) - s.first_seq
        b = s.count if stop is None else min(stop, s.last_seq + 1) - s.first_seq
        yield from table.slice(a, b - a).to_batches()
    yield from slice_rows(tail, lo, stop)
