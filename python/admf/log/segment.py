"""Framed segment files: the live tail of a log, and the recovery that reads them back.

A segment file starts with a 16-byte file header and then holds frames, one per commit group::

    file header  magic "ADMFSEG\\0" | format version u32 | crc32 of the 12 bytes before  (16 B)
    frame header magic "ADMF" | version u16 | flags u16 | first seq u64 | count u32
                 | payload length u32 | crc32 of payload u32 | crc32 of the 28 bytes before (32 B)
    payload      an Arrow IPC stream: the schema and one record batch of ``count`` events

An append (a commit group) may span several frames; only its last frame carries the
``COMMIT`` flag, so recovery treats frames after the last commit as a torn tail: an append is
in the log whole or not at all. (Frames of format version 1 predate the flag: each is its own
commit.)

All integers are little-endian. Each frame is self-contained (it carries its own schema), so a
segment can hold frames written by different versions of the schema. Checksums are zlib's
CRC-32 (the one in the standard library, hardware-accelerated where zlib is).

Recovery (`scan_segment`) validates every frame. Damage that reaches the end of the file (an
incomplete header, a payload cut short, a bad last frame with nothing valid after it) is a
*torn tail*: the caller may cut the file back to the last whole frame. Any other damage is a
`SegmentCorruption` naming the file and the byte offset. A frame is accepted only if both
checksums match, its payload decodes to exactly ``count`` rows, and its ``seq`` column runs
``first_seq, first_seq + 1, ...`` continuing the previous frame.
"""

from __future__ import annotations

import contextlib
import os
import struct
import weakref
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa

from admf.errors import AdmfError

FILE_MAGIC: Final[bytes] = b"ADMFSEG\x00"
FRAME_MAGIC: Final[bytes] = b"ADMF"
FORMAT_VERSION: Final[int] = 2
COMMIT: Final[int] = 1
"""Frame flag: the last frame of an append."""
FILE_HEADER: Final[struct.Struct] = struct.Struct("<8sII")
FRAME_HEADER: Final[struct.Struct] = struct.Struct("<4sHHQIIII")
SEGMENT_SUFFIX: Final[str] = ".admfseg"


class LogCorruptionError(AdmfError):
    """Damage in a log that is not a torn tail: the file and the byte offset where the damage
    starts. The log refuses to return data past it rather than return wrong data."""

    def __init__(self, path: Path | str, offset: int, reason: str) -> None:
        self.path = Path(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"{self.path}: damaged at byte offset {offset}: {reason}")


SegmentCorruption = LogCorruptionError


def crc32(data: bytes | memoryview | pa.Buffer) -> int:
    """zlib's CRC-32 of ``data``."""
    return zlib.crc32(data) & 0xFFFFFFFF


def file_header() -> bytes:
    """The 16-byte header every segment file starts with."""
    head = FILE_MAGIC + struct.pack("<I", FORMAT_VERSION)
    return head + struct.pack("<I", crc32(head))


def encode_batch(batch: pa.RecordBatch) -> pa.Buffer:
    """The Arrow IPC stream (schema + one batch) that is a frame's payload."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def encode_frame(
    batch: pa.RecordBatch, first_seq: int, *, commit: bool = True
) -> list[bytes | pa.Buffer]:
    """A frame for ``batch`` (whose ``seq`` column starts at ``first_seq``): header and payload,
    as the pieces to write one after the other. ``commit`` marks the last frame of an append."""
    payload = encode_batch(batch)
    flags = COMMIT if commit else 0
    head = FRAME_HEADER.pack(
        FRAME_MAGIC,
        FORMAT_VERSION,
        flags,
        first_seq,
        batch.num_rows,
        payload.size,
        crc32(payload),
        0,
    )
    head = head[:-4] + struct.pack("<I", crc32(head[:-4]))
    return [head, payload]


@dataclass
class TornTail:
    """Where a segment's valid frames end and why the rest was not accepted."""

    path: Path
    offset: int
    size: int
    reason: str

    @property
    def bytes_cut(self) -> int:
        return self.size - self.offset

    def __str__(self) -> str:
        return (
            f"{self.path}: torn tail at byte offset {self.offset} ({self.reason}); "
            f"{self.bytes_cut} byte(s) after the last whole frame"
        )


@dataclass
class ScanResult:
    """The valid frames of one segment file."""

    path: Path
    batches: list[pa.RecordBatch] = field(default_factory=list)
    first_seq: int = 0
    next_seq: int = 0
    end: int = 0
    """Byte offset just past the last whole frame."""
    torn: TornTail | None = None

    @property
    def count(self) -> int:
        return self.next_seq - self.first_seq


def _header_ok(data: bytes, offset: int) -> bool:
    if offset + FRAME_HEADER.size > len(data) or data[offset : offset + 4] != FRAME_MAGIC:
        return False
    stored = int.from_bytes(data[offset + 28 : offset + 32], "little")
    return crc32(memoryview(data)[offset : offset + 28]) == stored


def _later_frame(data: bytes, start: int) -> int:
    """The offset of a valid frame header after ``start``, or -1."""
    at = data.find(FRAME_MAGIC, start + 1)
    while at != -1:
        if _header_ok(data, at):
            return at
        at = data.find(FRAME_MAGIC, at + 1)
    return -1


def decode_payload(
    path: Path, offset: int, payload: memoryview, first_seq: int, count: int
) -> pa.RecordBatch:
    """The record batch of a frame whose checksums matched; a `LogCorruptionError` if it is not
    what the header says (never expected unless the file was forged or a bug wrote it)."""
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(payload))
        batches = list(reader)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LogCorruptionError(
            path, offset, f"frame payload is not an Arrow stream: {exc}"
        ) from None
    if len(batches) != 1 or batches[0].num_rows != count:
        raise LogCorruptionError(
            path, offset, f"frame header says {count} events, payload has a different number"
        )
    batch = batches[0]
    if "seq" not in batch.schema.names or batch.schema.field("seq").type != pa.uint64():
        raise LogCorruptionError(path, offset, "frame payload has no uint64 'seq' column")
    seqs = batch.column("seq").to_numpy(zero_copy_only=False)
    if count and not np.array_equal(seqs, np.arange(first_seq, first_seq + count, dtype=np.uint64)):
        raise LogCorruptionError(
            path, offset, f"frame's seq column does not run {first_seq}..{first_seq + count - 1}"
        )
    return batch


def scan_segment(path: Path, data: bytes, *, expect_first: int | None) -> ScanResult:
    """Validates every frame of the segment file ``path`` whose bytes are ``data``.

    ``expect_first`` is the seq the first frame must start with (None: whatever the first frame
    says). Damage that reaches the end of the file is returned as ``torn``; other damage raises
    `LogCorruptionError`."""
    result = ScanResult(path)
    size = len(data)
    if size < FILE_HEADER.size:
        result.torn = TornTail(path, 0, size, "file header incomplete")
        result.first_seq = result.next_seq = expect_first or 0
        return result
    magic, version, stored = FILE_HEADER.unpack_from(data, 0)
    if magic != FILE_MAGIC or crc32(data[:12]) != stored:
        raise LogCorruptionError(path, 0, "bad segment file header (not an admf segment?)")
    if version > FORMAT_VERSION:
        raise LogCorruptionError(
            path, 0, f"segment format version {version} is newer than this admf reads"
        )
    view = memoryview(data)
    offset = FILE_HEADER.size
    expected = expect_first
    result.first_seq = expect_first or 0
    result.next_seq = result.first_seq
    committed = (0, offset, result.next_seq)  # frames, end offset and next seq of the commits
    while offset < size:
        if size - offset < FRAME_HEADER.size:
            result.torn = TornTail(path, offset, size, "frame header incomplete")
            break
        if not _header_ok(data, offset):
            if _later_frame(data, offset) != -1:
                raise LogCorruptionError(path, offset, "bad frame header checksum")
            result.torn = TornTail(path, offset, size, "bad frame header and no frame after it")
            break
        _, version, flags, first_seq, count, length, payload_crc, _ = FRAME_HEADER.unpack_from(
            data, offset
        )
        if version > FORMAT_VERSION:
            raise LogCorruptionError(
                path, offset, f"frame format version {version} is newer than this admf reads"
            )
        end = offset + FRAME_HEADER.size + length
        if end > size:
            result.torn = TornTail(path, offset, size, "frame payload incomplete")
            break
        payload = view[offset + FRAME_HEADER.size : end]
        if crc32(payload) != payload_crc:
            if end == size:
                result.torn = TornTail(path, offset, size, "bad payload checksum in last frame")
                break
            raise LogCorruptionError(path, offset, "bad frame payload checksum")
        if expected is not None and first_seq != expected:
            raise LogCorruptionError(
                path, offset, f"frame starts at seq {first_seq}, expected seq {expected}"
            )
        if expected is None:
            result.first_seq = first_seq
        result.batches.append(decode_payload(path, offset, payload, first_seq, count))
        expected = first_seq + count
        result.next_seq = expected
        offset = end
        if version < 2 or flags & COMMIT:
            committed = (len(result.batches), offset, expected)
    frames, commit_end, commit_next = committed
    if frames < len(result.batches):
        reason = "the last append was not completed (frames after its last commit)"
        if result.torn is not None:
            reason = f"{result.torn.reason}; {reason}"
        result.torn = TornTail(path, commit_end, size, reason)
        del result.batches[frames:]
        result.next_seq = commit_next
    result.end = offset if result.torn is None else result.torn.offset
    return result


def read_segment(path: Path, *, expect_first: int | None) -> ScanResult:
    """`scan_segment` of the file at ``path``."""
    with open(path, "rb") as f:
        data = f.read()
    return scan_segment(path, data, expect_first=expect_first)


def segment_name(first_seq: int) -> str:
    return f"seg-{first_seq:020d}{SEGMENT_SUFFIX}"


def segment_first_seq(path: Path) -> int | None:
    """The first seq in a segment file's name, or None if the name is not a segment's."""
    name = path.name
    if not (name.startswith("seg-") and name.endswith(SEGMENT_SUFFIX)):
        return None
    digits = name[4 : -len(SEGMENT_SUFFIX)]
    return int(digits) if digits.isdigit() else None


def fsync_dir(path: Path) -> None:
    """fsyncs a directory, so that a file created, renamed or removed in it stays so."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | pa.Buffer | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomically(
    path: Path, data: bytes | pa.Buffer | memoryview, mode: int = 0o644, *, sync: bool = True
) -> None:
    """Writes ``path`` whole or not at all: into ``path.tmp``, fsynced, renamed over ``path``,
    and the directory fsynced (``sync=False`` skips both fsyncs, for logs that never sync)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(path.parent)


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):  # already closed
        os.close(fd)


class SegmentWriter:
    """Appends frames to one segment file. Not thread-safe: the log serializes writers. The
    descriptor is closed by `close`, or by the garbage collector if the log was dropped."""

    def __init__(self, path: Path, first_seq: int, *, create: bool, end: int = 0) -> None:
        self.path = path
        self.first_seq = first_seq
        if create:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                write_all(fd, file_header())
                os.fsync(fd)
                fsync_dir(path.parent)
            except BaseException:
                os.close(fd)
                raise
            self.size = FILE_HEADER.size
        else:
            fd = os.open(path, os.O_WRONLY)
            os.lseek(fd, end, os.SEEK_SET)
            self.size = end
        self._fd = fd
        self._finalizer = weakref.finalize(self, _close_fd, fd)

    def write(self, pieces: list[bytes | pa.Buffer]) -> int:
        n = 0
        for piece in pieces:
            write_all(self._fd, piece)
            n += len(piece) if isinstance(piece, bytes) else piece.size
            self.size += len(piece) if isinstance(piece, bytes) else piece.size
        return n

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def cut(self, size: int, *, sync: bool) -> None:
        """Cuts the file back to ``size`` bytes (a failed append's frames go) and makes the
        cut durable."""
        os.ftruncate(self._fd, size)
        os.lseek(self._fd, size, os.SEEK_SET)
        self.size = size
        if sync:
            os.fsync(self._fd)

    def close(self) -> None:
        self._finalizer()


def truncate_file(path: Path, size: int, *, sync: bool = True) -> None:
    """Cuts ``path`` to ``size`` bytes and (with ``sync``) makes the cut durable."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
