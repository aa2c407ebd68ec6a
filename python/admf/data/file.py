"""A data file whose bytes are already in memory.

The readers of ``admf.data`` take a ``DataFile`` wherever they take a path and read its bytes
instead of the disk, so each format has one reader whether its bytes come from the disk or
from somewhere else: the ``replay`` live adapter reads its files with aiofiles (the event
loop never waits on the disk) and hands them over this way.

A ``DataFile`` answers the part of ``pathlib.Path`` the readers use (``name``, ``suffix``,
``open``, ``read_bytes``, ``read_text``, ``is_file``, ``with_name``); pyarrow reads it through
``arrow_input``. Files read together (a LOBSTER message file and its orderbook file) are
each other's ``siblings``: ``with_name`` finds them in memory.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import pyarrow as pa


@dataclasses.dataclass(frozen=True)
class DataFile:
    """A file's path (its name, and what messages show) and its bytes."""

    path: Path
    data: bytes = dataclasses.field(repr=False)
    siblings: Mapping[str, bytes] = dataclasses.field(default_factory=dict, repr=False)
    """Bytes of files beside it, by name (read with it)."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def suffix(self) -> str:
        return self.path.suffix

    def __str__(self) -> str:
        return str(self.path)

    def is_file(self) -> bool:
        return True

    def with_name(self, name: str) -> DataFile | Path:
        """The file ``name`` beside it: in memory if it was read with it, else on disk."""
        path, data = self.path.with_name(name), self.siblings.get(name)
        return path if data is None else DataFile(path, data)

    def read_bytes(self) -> bytes:
        return self.data

    def read_text(self, encoding: str = "utf-8") -> str:
        with self.open(encoding=encoding) as f:
            return f.read()  # type: ignore[no-any-return]

    def open(self, mode: str = "r", encoding: str | None = None) -> IO[Any]:
        """The bytes as a file, binary (``"rb"``) or text (universal newlines, as
        ``Path.open``)."""
        raw = io.BytesIO(self.data)
        if "b" in mode:
            return raw
        return io.TextIOWrapper(raw, encoding=encoding or "utf-8")


DataPath = Path | DataFile
"""What the readers take: a path on disk, or a file already in memory."""


def data_path(path: str | os.PathLike[str] | DataFile) -> DataPath:
    return path if isinstance(path, DataFile) else Path(path)


def arrow_input(path: DataPath) -> str | pa.BufferReader:
    """What pyarrow's readers open: the path (pyarrow's own file reader), or the bytes."""
    return pa.BufferReader(path.data) if isinstance(path, DataFile) else str(path)
