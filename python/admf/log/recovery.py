"""Opening a log: the shape record against the directory, then every tail frame validated.

`recover` reads ``shape.json`` and compares it with the files on disk. A file the record
lists that is missing, has another size, or (with ``verify``) other bytes, a file it does not
list, a segment that holds fewer or more events than recorded: each is a
`LogCorruptionError` naming the file, for readers and writers alike. Two kinds of unlisted
file are expected after a crash (or, for a reader, while a writer works) and are not errors:
a sealed file whose segment is still listed (the seal had not been recorded yet) and a
segment that is empty or whose sealed file is listed (it had not been removed yet); a writer
deletes them, a reader ignores them.

Within the live segment (the last one, still written), the frames say where the log ends: a
torn tail (a frame cut short, or frames of an append that never got its commit mark) is cut
back by a writer and skipped by a reader, and listed in `Recovered.torn`. Damage anywhere
else in a segment quarantines it (for a writer) and raises.

A reader may pass the bytes of the files it reads events from (``contents``, keyed by
`log_files`' names): those are checked exactly as the files would be, and the files are not
read again. Listing and sizes still come from the directory.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa

from admf.log.seal import SEALED_GLOB, SealedFile, parse_sealed_name
from admf.log.segment import (
    FILE_HEADER,
    LogCorruptionError,
    SegmentWriter,
    TornTail,
    fsync_dir,
    read_segment,
    scan_segment,
    segment_first_seq,
    truncate_file,
)
from admf.log.shape import SHAPE_NAME, SegmentEntry, Shape, file_sha256

TAIL_DIR: Final[str] = "tail"
QUARANTINE_DIR: Final[str] = "quarantine"
_LOG: Final[logging.Logger] = logging.getLogger("admf.log")


class ListingChangedError(LogCorruptionError):
    """Files that do not fit the shape record: damage, or (for a reader) a writer that
    changed the log between reading the record and listing the files; a reader looks again
    before it gives up."""


@dataclass
class LiveSegment:
    """A tail segment in memory: its frames' batches, and the writer of the live one."""

    path: Path
    first_seq: int
    batches: list[pa.RecordBatch] = field(default_factory=list)
    count: int = 0
    writer: SegmentWriter | None = None
    closed: bool = False
    """Full: no more frames go here, and it waits to be sealed."""

    @property
    def entry(self) -> SegmentEntry:
        last = self.first_seq + self.count - 1 if self.closed else None
        return SegmentEntry(self.path.name, self.first_seq, last)


@dataclass
class Recovered:
    """What `recover` found: the log's files in seq order and where it ends."""

    shape: Shape
    sealed: list[SealedFile]
    tail: list[LiveSegment]
    next_seq: int
    torn: list[TornTail]


def _check_quarantine(run_dir: Path) -> None:
    quarantine = run_dir / QUARANTINE_DIR
    held = sorted(quarantine.iterdir()) if quarantine.is_dir() else []
    if held:
        name, _, offset = held[0].name.partition(".at-")
        raise LogCorruptionError(
            held[0],
            int(offset) if offset.isdigit() else 0,
            f"segment {name} was quarantined when the log was last opened; the events "
            "from it on cannot be trusted. Inspect it and move it out of quarantine/ "
            "to accept the log up to the damage",
        )


def _quarantine(run_dir: Path, path: Path, offset: int) -> None:
    target_dir = run_dir / QUARANTINE_DIR
    target_dir.mkdir(exist_ok=True)
    os.replace(path, target_dir / f"{path.name}.at-{offset}")
    fsync_dir(target_dir)
    fsync_dir(path.parent)


def _remove(path: Path, *, sync: bool) -> None:
    path.unlink()
    if sync:
        fsync_dir(path.parent)


def log_files(shape: Shape) -> list[str]:
    """The files holding a log's events as ``shape`` records them, in seq order, as paths
    relative to the run directory (the keys of `recover`'s ``contents``)."""
    return [s.name for s in shape.sealed] + [f"{TAIL_DIR}/{t.name}" for t in shape.tail]


def recover(
    run_dir: Path,
    shape: Shape,
    *,
    writer: bool,
    verify: bool,
    sync: bool,
    contents: Mapping[str, bytes] | None = None,
) -> Recovered:
    """The log at ``run_dir`` as ``shape`` records it, checked against the directory (see the
    module's docstring). A ``writer`` cleans up what a crash left and cuts a torn tail; a
    reader may give the files' bytes (``contents``)."""
    if writer and contents:
        raise ValueError("recover: only a reader takes the files' bytes from its caller")
    given: Mapping[str, bytes] = contents or {}
    _check_quarantine(run_dir)
    tail_dir = run_dir / TAIL_DIR
    if writer:
        for tmp in sorted(run_dir.glob("*.tmp")):
            tmp.unlink()
    on_disk_sealed = {p.name: p for p in run_dir.glob(SEALED_GLOB)}
    on_disk_segments: dict[str, Path] = {}
    if tail_dir.is_dir():
        for path in tail_dir.iterdir():
            if segment_first_seq(path) is not None:
                on_disk_segments[path.name] = path
            elif path.name.endswith(".tmp") and writer:
                path.unlink()
            else:
                raise LogCorruptionError(path, 0, "not a segment file name")
    listed_sealed = {s.name for s in shape.sealed}
    listed_segments = {t.name: t for t in shape.tail}
    sealed_firsts = {s.first for s in shape.sealed}
    segment_firsts = {t.first for t in shape.tail if t.name in on_disk_segments}

    # Unlisted files: either what a crash (or a concurrent writer) leaves, or an error.
    for name, path in sorted(on_disk_sealed.items()):
        if name in listed_sealed:
            continue
        parsed = parse_sealed_name(name)
        if parsed is not None and parsed[0] in segment_firsts:
            if writer:  # sealed, not yet recorded: the segment is sealed again later
                _remove(path, sync=sync)
            continue
        raise ListingChangedError(
            path, 0, "sealed file not in the log's shape record (extra, renamed or copied in)"
        )
    for name, path in sorted(on_disk_segments.items()):
        if name in listed_segments:
            continue
        first = segment_first_seq(path)
        if first in sealed_firsts or path.stat().st_size <= FILE_HEADER.size:
            if writer:  # sealed and recorded, or created and not yet recorded: never used
                _remove(path, sync=sync)
            continue
        raise ListingChangedError(
            path, 0, "segment not in the log's shape record (extra, renamed or copied in)"
        )

    expected = 1
    sealed: list[SealedFile] = []
    for done in shape.sealed:
        path = run_dir / done.name
        parsed = parse_sealed_name(done.name)
        if parsed is None or parsed[:2] != (done.first, done.last):
            raise LogCorruptionError(path, 0, "the shape record's entry does not fit its name")
        if done.first != expected:
            raise LogCorruptionError(
                path,
                0,
                f"starts at seq {done.first}, the log's previous file ends before seq {expected}",
            )
        if done.name not in on_disk_sealed:
            raise ListingChangedError(path, 0, "sealed file is missing (deleted or renamed)")
        one = SealedFile(path, done.first, done.last, parsed[2], done.size, done.sha256)
        data = given.get(done.name)
        if verify or data is not None:  # given bytes are always verified: they are kept
            one.verify(data)
        else:
            one.remember()
        sealed.append(one)
        expected = done.last + 1

    tail: list[LiveSegment] = []
    torn_tails: list[TornTail] = []
    for i, entry in enumerate(shape.tail):
        path = tail_dir / entry.name
        if entry.first != expected:
            raise LogCorruptionError(
                path,
                0,
                f"starts at seq {entry.first}, the log's previous file ends before seq {expected}",
            )
        if entry.name not in on_disk_segments:
            raise ListingChangedError(path, 0, "segment is missing (deleted or renamed)")
        is_last = i == len(shape.tail) - 1
        live = entry.last is None and is_last  # the frames say where it ends
        data = given.get(f"{TAIL_DIR}/{entry.name}")
        segment, torn = _scan(run_dir, path, entry, live=live, writer=writer, sync=sync, data=data)
        if verify and entry.sha256 is not None and _sha256(path, data) != entry.sha256:
            raise LogCorruptionError(path, 0, "segment's SHA-256 does not match the shape record")
        if torn is not None:
            torn_tails.append(torn)
        if segment is not None:
            # the last segment of a closed log is appended to again when it is reopened
            segment.closed = not (live or (is_last and shape.closed))
            tail.append(segment)
            expected = segment.first_seq + segment.count
    if shape.end is not None and shape.end != expected - 1:
        where = tail[-1].path if tail else run_dir / SHAPE_NAME
        raise LogCorruptionError(
            where, 0, f"the log ends at seq {expected - 1}, the shape record says {shape.end}"
        )
    for torn in torn_tails:
        _LOG.warning("event log recovery: %s", torn)
    return Recovered(shape, sealed, tail, expected, torn_tails)


def _sha256(path: Path, data: bytes | None) -> str:
    return file_sha256(path) if data is None else hashlib.sha256(data).hexdigest()


def _scan(
    run_dir: Path,
    path: Path,
    entry: SegmentEntry,
    *,
    live: bool,
    writer: bool,
    sync: bool,
    data: bytes | None,
) -> tuple[LiveSegment | None, TornTail | None]:
    try:
        result = (
            read_segment(path, expect_first=entry.first)
            if data is None
            else scan_segment(path, data, expect_first=entry.first)
        )
        torn = result.torn
        if torn is not None and not live:
            raise LogCorruptionError(
                path, torn.offset, f"damage inside a closed segment ({torn.reason})"
            )
        if entry.size is not None and result.end != entry.size:
            raise LogCorruptionError(
                path,
                min(result.end, entry.size),
                f"segment has {result.end} bytes of frames, the shape record says {entry.size}",
            )
        if entry.last is not None and result.next_seq - 1 != entry.last:
            raise LogCorruptionError(
                path,
                result.end,
                f"segment holds seqs {entry.first}..{result.next_seq - 1}, the shape record "
                f"says {entry.first}..{entry.last}",
            )
    except FileNotFoundError:
        raise ListingChangedError(path, 0, "segment is missing (deleted or renamed)") from None
    except LogCorruptionError as exc:
        if writer and not isinstance(exc, ListingChangedError):
            _quarantine(run_dir, path, exc.offset)
            raise LogCorruptionError(
                exc.path, exc.offset, exc.reason + f"; segment moved to {QUARANTINE_DIR}/"
            ) from None
        raise
    if torn is not None and writer:
        if torn.offset < FILE_HEADER.size:
            _remove(path, sync=sync)
            return None, torn
        truncate_file(path, torn.offset, sync=sync)
    return LiveSegment(path, entry.first, result.batches, result.count), torn
