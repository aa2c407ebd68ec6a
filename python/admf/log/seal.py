"""Sealing: a full segment becomes an immutable Parquet file.

The file is written to a temporary name, fsynced, renamed to its final name and the directory
fsynced; only then does the shape record list it and the segment go. The final name carries
the seq range and the CRC-32 of the whole file, ``events-<first>-<last>-<crc32>.parquet``;
the shape record adds its size and SHA-256. Parquet's own page checksums (written, and
verified by `SealedFile.read`) cover the data pages; the CRC and the SHA-256 cover every byte.

DuckDB does not verify Parquet page checksums, so a file is checked before any read of it
(by `EventLog.read` and by SQL alike): its identity (inode, size, modification and change
times) is taken when it is verified; a later read compares it, and a file whose identity
changed is hashed again before it is used. A write to the file cannot leave its change time
as it was.

A reader may be given a sealed file's bytes instead (`EventLog.open`'s ``contents``: the
replay adapter reads them with aiofiles); they are verified the same way and then read from
memory, so the file on disk is not read again.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from admf.log.segment import LogCorruptionError, crc32, write_atomically

SEALED_GLOB: Final[str] = "events-*.parquet"
SEALED_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"events-(\d{20})-(\d{20})-([0-9a-f]{8})\.parquet"
)
ROW_GROUP_SIZE: Final[int] = 262_144
_DICTIONARY_COLUMNS: Final[tuple[str, ...]] = ("instrument", "kind", "side", "flags")
_DELTA_COLUMNS: Final[tuple[str, ...]] = ("seq", "ts", "order_id")


class FileIdentity(NamedTuple):
    """What changes when a file's bytes are written or the file is replaced."""

    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        st = os.stat(path)
        return cls(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sealed_name(first_seq: int, last_seq: int, crc: int) -> str:
    return f"events-{first_seq:020d}-{last_seq:020d}-{crc:08x}.parquet"


@dataclass(eq=False)
class SealedFile:
    """One sealed Parquet file: its seq range, size and hashes (from the shape record)."""

    path: Path
    first_seq: int
    last_seq: int
    crc: int
    size: int
    sha256: str
    _identity: FileIdentity | None = field(default=None, repr=False)
    _data: bytes | None = field(default=None, repr=False)
    """The verified bytes, when the caller gave them (see the module docstring)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1

    @property
    def name(self) -> str:
        return self.path.name

    def check_size(self) -> None:
        """Raises `LogCorruptionError` if the file is gone or its size is not the recorded one
        (cheap: one stat)."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            raise LogCorruptionError(self.path, 0, "sealed file is missing") from None
        self._check_size(size)

    def _check_size(self, size: int) -> None:
        if size != self.size:
            raise LogCorruptionError(
                self.path,
                min(size, self.size),
                f"sealed file has {size} bytes, the shape record says {self.size}",
            )

    def verify(self, data: bytes | None = None) -> None:
        """Raises `LogCorruptionError` unless the file's bytes have the recorded size, CRC-32
        and SHA-256; remembers the file's identity for `check`. Given ``data`` (the file's
        bytes, read by the caller), those are verified, and kept: later reads use them."""
        with self._lock:
            identity = None
            if data is None:
                self.check_size()
                identity = FileIdentity.of(self.path)
                with open(self.path, "rb") as f:
                    data = f.read()
                kept = None
            else:
                self._check_size(len(data))
                kept = data
            if crc32(data) != self.crc:
                raise LogCorruptionError(
                    self.path, 0, "sealed file's CRC-32 does not match the one in its name"
                )
            if hashlib.sha256(data).hexdigest() != self.sha256:
                raise LogCorruptionError(
                    self.path, 0, "sealed file's SHA-256 does not match the shape record"
                )
            self._identity = identity
            self._data = kept

    def remember(self) -> None:
        """Takes the file's identity as it is now, unverified (a log opened with
        ``verify=False`` trusts the files it opened, and only notices later changes)."""
        with self._lock:
            self.check_size()
            self._identity = FileIdentity.of(self.path)

    def check(self) -> None:
        """Verifies the file again if it changed since it was verified (or remembered); bytes
        held in memory cannot change."""
        if self._data is not None:
            return
        try:
            now = FileIdentity.of(self.path)
        except FileNotFoundError:
            raise LogCorruptionError(self.path, 0, "sealed file is missing") from None
        if now != self._identity:
            self.verify()

    def _source(self) -> Path | pa.BufferReader:
        return self.path if self._data is None else pa.BufferReader(self._data)

    def schema(self) -> pa.Schema:
        """The file's columns (from its footer)."""
        try:
            return pq.read_schema(self._source())
        except (pa.ArrowInvalid, OSError) as exc:
            raise LogCorruptionError(self.path, 0, f"unreadable Parquet: {exc}") from exc

    def read(self, columns: list[str] | None = None) -> pa.Table:
        self.check()
        try:
            table = pq.read_table(self._source(), columns=columns, page_checksum_verification=True)
        except (pa.ArrowInvalid, OSError) as exc:
            raise LogCorruptionError(self.path, 0, f"unreadable Parquet: {exc}") from exc
        self.check()  # changed while it was read: verified again (and refused if damaged)
        return table


def parse_sealed_name(name: str) -> tuple[int, int, int] | None:
    """(first seq, last seq, crc) from a sealed file's name, or None."""
    match = SEALED_PATTERN.fullmatch(name)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3], 16)


def seal_table(table: pa.Table, run_dir: Path, first_seq: int, *, sync: bool = True) -> SealedFile:
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
    sha = hashlib.sha256(data).hexdigest()
    name = sealed_name(first_seq, last_seq, crc)
    final = run_dir / name
    write_atomically(final, data, 0o444, sync=sync)
    sealed = SealedFile(final, first_seq, last_seq, crc, data.size, sha)
    sealed.remember()
    return sealed
