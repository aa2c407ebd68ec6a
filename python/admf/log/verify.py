"""`verify_log`: everything a log can check about itself, file by file.

It checks the manifest (fields, config hash and digest), the shape record (its checksum and
hash chain, and that it belongs to this manifest), every sealed file (present, size, CRC-32,
SHA-256, readable Parquet with page checksums, seqs running over its range), every tail
segment (every frame's checksums and seq continuity, and for a closed log its size, SHA-256
and last seq), the files the shape record does not list, and where the log ends. It reports
every problem it finds rather than the first, and whether the run finished. ``admf verify``
prints the report; `admf.replay` refuses a log whose report is not clean.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from admf.errors import AdmfError
from admf.log.manifest import MANIFEST_NAME, Manifest
from admf.log.recovery import QUARANTINE_DIR, TAIL_DIR
from admf.log.seal import SEALED_GLOB, SealedFile, parse_sealed_name
from admf.log.segment import FILE_HEADER, LogCorruptionError, read_segment, segment_first_seq
from admf.log.shape import SHAPE_NAME, Shape, file_sha256


class LogVerificationError(AdmfError):
    """A log that failed `verify_log`; the message lists what is wrong."""


@dataclass
class VerifyReport:
    """What `verify_log` found."""

    path: Path
    run_id: str | None = None
    events: int = 0
    """The last seq the log's files hold together."""
    closed: bool = False
    """A writer closed the log and recorded where it ends."""
    finished: bool = False
    """The run was marked finished (`EventLog.mark_finished`)."""
    chain: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Not damage: a torn tail of a log that was not closed, for instance."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def check(self) -> VerifyReport:
        """Returns the report if the log is intact; raises `LogVerificationError` if not."""
        if self.problems:
            listing = "; ".join(self.problems[:5])
            more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
            raise LogVerificationError(
                f"the event log {self.path} fails verification: {listing}{more} "
                f"(admf verify {self.path} lists everything)"
            )
        return self


def verify_log(path: str | os.PathLike[str]) -> VerifyReport:
    """Checks the log at ``path`` (a ``run=<id>`` directory) without changing it."""
    run_dir = Path(path)
    report = VerifyReport(run_dir)
    if not run_dir.is_dir() or not (run_dir / MANIFEST_NAME).is_file():
        raise AdmfError(f"no event log at {run_dir}: expected a run directory with {MANIFEST_NAME}")
    manifest = None
    try:
        manifest = Manifest.read(run_dir)
        report.run_id = manifest.run_id
    except AdmfError as exc:
        report.problems.append(str(exc))
    try:
        shape = Shape.read(run_dir)
    except LogCorruptionError as exc:
        report.problems.append(str(exc))
        return report
    report.closed, report.finished, report.chain = shape.closed, shape.finished, shape.chain()
    if manifest is not None and manifest.digest != shape.manifest_sha256:
        report.problems.append(
            f"{run_dir / MANIFEST_NAME}: not the manifest this log was created with "
            f"(its digest differs from the one in {SHAPE_NAME})"
        )
    quarantine = run_dir / QUARANTINE_DIR
    for held in sorted(quarantine.iterdir()) if quarantine.is_dir() else []:
        report.problems.append(f"{held}: a damaged segment was quarantined")
    expected = _check_sealed(run_dir, shape, report)
    expected = _check_tail(run_dir, shape, report, expected)
    report.events = expected - 1
    if shape.end is not None and shape.end != expected - 1:
        report.problems.append(
            f"{run_dir / SHAPE_NAME}: the log was closed at seq {shape.end}, its files hold "
            f"seqs up to {expected - 1}"
        )
    _check_unlisted(run_dir, shape, report)
    return report


def _check_sealed(run_dir: Path, shape: Shape, report: VerifyReport) -> int:
    expected = 1
    for entry in shape.sealed:
        path = run_dir / entry.name
        if entry.first != expected:
            report.problems.append(
                f"{path}: starts at seq {entry.first}, expected seq {expected} (a gap or overlap)"
            )
        expected = entry.last + 1
        parsed = parse_sealed_name(entry.name)
        if parsed is None or parsed[:2] != (entry.first, entry.last):
            report.problems.append(f"{path}: the shape record's entry does not fit its name")
            continue
        if not path.is_file():
            report.problems.append(f"{path}: sealed file is missing (deleted or renamed)")
            continue
        sealed = SealedFile(path, entry.first, entry.last, parsed[2], entry.size, entry.sha256)
        try:
            sealed.verify()
            table = sealed.read(["seq"])
        except LogCorruptionError as exc:
            report.problems.append(str(exc))
            continue
        seqs = table.column("seq").to_numpy()
        if not np.array_equal(seqs, np.arange(entry.first, entry.last + 1, dtype=np.uint64)):
            report.problems.append(
                f"{path}: its seq column does not run {entry.first}..{entry.last}"
            )
    return expected


def _check_tail(run_dir: Path, shape: Shape, report: VerifyReport, expected: int) -> int:
    for i, entry in enumerate(shape.tail):
        path = run_dir / TAIL_DIR / entry.name
        if entry.first != expected:
            report.problems.append(
                f"{path}: starts at seq {entry.first}, expected seq {expected} (a gap or overlap)"
            )
        if not path.is_file():
            report.problems.append(f"{path}: segment is missing (deleted or renamed)")
            expected = entry.last + 1 if entry.last is not None else expected
            continue
        try:
            scan = read_segment(path, expect_first=entry.first)
        except LogCorruptionError as exc:
            report.problems.append(str(exc))
            expected = entry.last + 1 if entry.last is not None else expected
            continue
        live = entry.last is None and i == len(shape.tail) - 1
        if scan.torn is not None:
            if live:
                report.notes.append(f"{scan.torn} (a crash of an open writer; cut on reopen)")
            else:
                report.problems.append(f"{scan.torn}: inside a closed segment")
        if entry.last is not None and scan.next_seq - 1 != entry.last:
            report.problems.append(
                f"{path}: holds seqs {entry.first}..{scan.next_seq - 1}, the shape record says "
                f"{entry.first}..{entry.last}"
            )
        if entry.size is not None and path.stat().st_size != entry.size:
            report.problems.append(
                f"{path}: has {path.stat().st_size} bytes, the shape record says {entry.size}"
            )
        if entry.sha256 is not None and file_sha256(path) != entry.sha256:
            report.problems.append(f"{path}: its SHA-256 does not match the shape record")
        expected = scan.next_seq if entry.last is None else entry.last + 1
    return expected


def _check_unlisted(run_dir: Path, shape: Shape, report: VerifyReport) -> None:
    """Files with a log file's name that the shape record does not list (an interrupted
    seal leaves one whose segment is still listed: a note, not a problem)."""
    listed = {s.name for s in shape.sealed}
    firsts = {t.first for t in shape.tail}
    for path in sorted(run_dir.glob(SEALED_GLOB)):
        if path.name in listed:
            continue
        parsed = parse_sealed_name(path.name)
        if parsed is not None and parsed[0] in firsts:
            report.notes.append(f"{path}: an interrupted seal's file (removed on reopen)")
        else:
            report.problems.append(f"{path}: not in the log's shape record (extra or renamed)")
    tail_dir = run_dir / TAIL_DIR
    listed_tail = {t.name for t in shape.tail}
    sealed_firsts = {s.first for s in shape.sealed}
    for path in sorted(tail_dir.iterdir()) if tail_dir.is_dir() else []:
        if path.name in listed_tail:
            continue
        first = segment_first_seq(path)
        if first is not None and first in sealed_firsts:
            report.notes.append(f"{path}: a sealed segment not yet removed (removed on reopen)")
        elif first is not None and path.stat().st_size <= FILE_HEADER.size:
            report.notes.append(f"{path}: a segment started but never used (removed on reopen)")
        else:
            report.problems.append(f"{path}: not in the log's shape record (extra or renamed)")
