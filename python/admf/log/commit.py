"""Appends and commit units: what an append is, how its seqs are resolved, how a unit of
appends becomes frames. A unit is written whole (its last frame carries the commit mark) or
cut back whole (`LogWriteError`); `EventLog` runs the units."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from admf.errors import AdmfError
from admf.events import FIELD_NAMES
from admf.log.payload import PAYLOAD_COLUMN
from admf.log.segment import encode_frame


class LogWriteError(AdmfError):
    """The disk refused a write or an fsync (full, failing): nothing of the append that hit
    it was kept, and the log holds exactly what it acknowledged before."""

    def __init__(self, message: str, errno: int | None) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass(frozen=True, slots=True)
class SeqRange:
    """The seqs of an append, ``first`` to ``last`` inclusive (empty when last < first)."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return max(0, self.last - self.first + 1)


@dataclass
class Append:
    batch: pa.RecordBatch
    given_first: int | None
    future: Future[SeqRange] = field(default_factory=Future)


@dataclass
class Unit:
    """Appends committed together: their rows, written and synced as one."""

    start_seq: int
    items: list[tuple[Append, SeqRange]] = field(default_factory=list)
    rows: list[pa.RecordBatch] = field(default_factory=list)


def given_first(batch: pa.RecordBatch) -> int | None:
    """None if every seq is 0 (the log assigns them); else the first seq, after checking that
    the seqs run contiguously."""
    n = batch.num_rows
    if n == 0:
        return None
    seqs = batch.column("seq").to_numpy(zero_copy_only=False)
    if not seqs.any():
        return None
    first = int(seqs[0])
    if first == 0 or not np.array_equal(seqs, np.arange(first, first + n, dtype=np.uint64)):
        raise AdmfError(
            "an append's seqs must be all 0 (the log assigns them) or contiguous and "
            f"ascending; got seqs starting {seqs[:5].tolist()}"
        )
    return first


def with_seqs(batch: pa.RecordBatch, first: int) -> pa.RecordBatch:
    seqs = pa.array(np.arange(first, first + batch.num_rows, dtype=np.uint64))
    return batch.set_column(0, batch.schema.field(0), seqs)


def first_seq(batch: pa.RecordBatch) -> int:
    return int(batch.column(0)[0].as_py())


def encode_unit(
    rows: list[pa.RecordBatch], group_events: int
) -> list[tuple[pa.RecordBatch, list[bytes | pa.Buffer]]]:
    """A unit's rows as frames of at most ``group_events`` rows (rows of one schema
    combined); only the last frame carries the commit mark."""
    batches: list[pa.RecordBatch] = []
    rest = list(rows)
    while rest:
        run = 1
        while run < len(rest) and rest[run].schema == rest[0].schema:
            run += 1
        part, rest = rest[:run], rest[run:]
        batch = (
            part[0]
            if len(part) == 1
            else pa.Table.from_batches(part).combine_chunks().to_batches()[0]
        )
        batches += [batch.slice(i, group_events) for i in range(0, batch.num_rows, group_events)]
    return [
        (b, encode_frame(b, first_seq(b), commit=i == len(batches) - 1))
        for i, b in enumerate(batches)
    ]


def same_events(stored: pa.Table, given: pa.Table) -> bool:
    columns = [*FIELD_NAMES, PAYLOAD_COLUMN]
    a = stored.select(columns)
    b = given.select(columns)
    return bool(a.num_rows == b.num_rows and a.equals(b))
