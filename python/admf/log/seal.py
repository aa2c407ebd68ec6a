"""Sealing: a full segment becomes an immutable Parquet file.

The file is written to a temporary name, fsynced, renamed to its final name and the directory
fsynced; only then is the segment removed. The final name carries the seq range and the CRC-32
of the whole file, ``events-<first>-<last>-<crc32>.parquet``, so a sealed file checks itself:
Parquet's own page checksums (written, and verified on read) cover the data pages, and the
name's CRC covers everything else (footer, statistics, page headers).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from admf.log.segment import LogCorruptionError, crc32, fsync_dir, write_all

SEALED_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"events-(\d{20})-(\d{20})-([0-9a-f]{8})\.parquet"
)
ROW_GROUP_SIZE: Final[int] = 262_144
_DICTIONARY_COLUMNS: Final[tuple[str, ...]] = ("instrument", "kind", "side", "flags")
_DELTA_COLUMNS: Final[tuple[str, ...]] = ("seq", "ts", "order_id")


@dataclass(frozen=True)
class SealedFile:
    """One sealed Parquet file and the seq range it holds."""

    path: Path
    first_seq: int
    last_seq: int
    crc: int

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1

    @classmethod
    def parse(cls, path: Path) -> SealedFile | None:
        match = SEALED_PATTERN.fullmatch(path.name)
        if match is None:
            return None
        return cls(path, int(match[1]), int(match[2]), int(match[3], 16))

    def verify(self) -> None:
        """Raises `LogCorruptionError` unless the file's bytes have the CRC in its name."""
        with open(self.path, "rb") as f:
            data = f.read()
        if crc32(data) != self.crc:
            raise LogCorruptionError(
                self.path, 0, "sealed file's CRC-32 does not match the one in its name"
            )

    def schema(self) -> pa.Schema:
        """The file's columns (from its footer)."""
        try:
            return pq.read_schema(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise LogCorruptionError(self.path, 0, f"unreadable Parquet: {exc}") from exc

    def read(self, columns: list[str] | None = None) -> pa.Table:
        try:
            return pq.read_table(self.path, columns=columns, page_checksum_verification=True)
        except (pa.ArrowInvalid, OSError) as exc:
            raise LogCorruptionError(self.path, 0, f"unreadable Parquet: {exc}") from exc


def seal_table(table: pa.Table, run_dir: Path, first_seq: int) -> SealedFile:
    """Writes ``table`` (whose seqs run ``first_seq..``) as a sealed file in ``run_dir``."""
    last_seq = first_seq + table.num_rows - 1
    sink = pa.BufferOutputStream()
    names = set(table.schema.names)
    pq.write_table(
        table,
        sink,
        compression="zstd",
        write_page_checksum=True,
        row_group_size=ROW_GROUP_SIZE,
        sorting_columns=[pq.SortingColumn(0)],
        # dictionaries only where values repeat; deltas for the columns that climb
        use_dictionary=[c for c in _DICTIONARY_COLUMNS if c in names],
        column_encoding={c: "DELTA_BINARY_PACKED" for c in _DELTA_COLUMNS if c in names},
    )
    data = sink.getvalue()
    crc = crc32(data)
    name = f"events-{first_seq:020d}-{last_seq:020d}-{crc:08x}.parquet"
    tmp = run_dir / (name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    final = run_dir / name
    os.replace(tmp, final)
    fsync_dir(run_dir)
    return SealedFile(final, first_seq, last_seq, crc)
