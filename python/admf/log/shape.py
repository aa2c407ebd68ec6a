"""The shape record: which files hold which seqs, and where the log ends.

``shape.json`` is the log's own account of itself, like LevelDB's MANIFEST or an Iceberg
snapshot. It lists every sealed file (name, seq range, size, SHA-256) and every tail segment
(name, first seq, and the last seq of a segment no longer written), the SHA-256 of the run's
manifest, and, once a writer closes the log, where it ends (``end``), the SHA-256 of each tail
segment, and whether the run ``finished``. A hash chain runs from the manifest's digest over
every file hash in seq order; its head (``chain``) names the whole closed history, and a
checksum covers the record itself.

It is replaced atomically (temporary file, fsync, rename, fsync of the directory) whenever the
set of files changes: at each rotation (a new segment), each seal, each open by a writer and
each close. On open, readers and writers alike compare the directory with it: a missing,
extra, renamed or truncated file is an error naming the file. Within the one live segment the
frames themselves say where the log ends (a crash cuts a torn tail there).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from admf.log.segment import LogCorruptionError, write_atomically

SHAPE_NAME: Final[str] = "shape.json"
SHAPE_FORMAT: Final[str] = "admf-log-shape"
SHAPE_VERSION: Final[int] = 1
_HASH_CHUNK: Final[int] = 8 << 20


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (read in chunks: hashlib releases the GIL on each)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class SealedEntry:
    """A sealed Parquet file as the shape record knows it."""

    name: str
    first: int
    last: int
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    """A tail segment. ``last`` is None while the writer still appends to it; ``sha256``
    and ``size`` are recorded when the writer closes the log."""

    name: str
    first: int
    last: int | None = None
    size: int | None = None
    sha256: str | None = None


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Shape:
    """One version of the shape record (immutable: a change writes a new one)."""

    manifest_sha256: str
    sealed: tuple[SealedEntry, ...] = ()
    tail: tuple[SegmentEntry, ...] = ()
    end: int | None = None
    """The last seq, recorded when a writer closes the log (None while it is open)."""
    finished: bool = False
    generation: int = 0

    @property
    def closed(self) -> bool:
        return self.end is not None

    def chain(self) -> str:
        """The head of the hash chain: the manifest digest, then each file's hash and seq
        range in seq order (sealed files, then closed tail segments)."""
        head = bytes.fromhex(self.manifest_sha256)
        links: list[tuple[str, int, int | None, str | None]] = [
            (s.name, s.first, s.last, s.sha256) for s in self.sealed
        ]
        links += [(t.name, t.first, t.last, t.sha256) for t in self.tail if t.sha256]
        for link in links:
            head = hashlib.sha256(head + _canonical(list(link))).digest()
        return head.hex()

    def evolve(self, **changes: Any) -> Shape:
        return replace(self, generation=self.generation + 1, **changes)

    def body(self) -> dict[str, Any]:
        return {
            "format": SHAPE_FORMAT,
            "version": SHAPE_VERSION,
            "generation": self.generation,
            "manifest_sha256": self.manifest_sha256,
            "sealed": [
                {
                    "name": s.name,
                    "first": s.first,
                    "last": s.last,
                    "size": s.size,
                    "sha256": s.sha256,
                }
                for s in self.sealed
            ],
            "tail": [
                {
                    "name": t.name,
                    "first": t.first,
                    "last": t.last,
                    "size": t.size,
                    "sha256": t.sha256,
                }
                for t in self.tail
            ],
            "end": self.end,
            "finished": self.finished,
            "chain": self.chain(),
        }

    def write(self, run_dir: Path, *, sync: bool = True) -> None:
        """Replaces ``shape.json`` atomically."""
        body = self.body()
        body["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
        data = json.dumps(body, indent=1, sort_keys=True).encode() + b"\n"
        write_atomically(run_dir / SHAPE_NAME, data, sync=sync)

    @classmethod
    def read(cls, run_dir: Path) -> Shape:
        """The shape record of ``run_dir``; a `LogCorruptionError` naming ``shape.json`` if it
        is missing or does not check."""
        path = run_dir / SHAPE_NAME
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise LogCorruptionError(
                path, 0, "the log's shape record is missing (deleted, or not an admf log)"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LogCorruptionError(path, 0, f"not valid JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != SHAPE_FORMAT:
            raise LogCorruptionError(path, 0, "not an admf shape record")
        checksum = raw.pop("checksum", None)
        if checksum != hashlib.sha256(_canonical(raw)).hexdigest():
            raise LogCorruptionError(path, 0, "the shape record's checksum does not match")
        try:
            if int(raw["version"]) > SHAPE_VERSION:
                raise LogCorruptionError(
                    path, 0, f"shape version {raw['version']} is newer than this admf reads"
                )
            shape = cls(
                manifest_sha256=str(raw["manifest_sha256"]),
                sealed=tuple(
                    SealedEntry(
                        str(s["name"]),
                        int(s["first"]),
                        int(s["last"]),
                        int(s["size"]),
                        str(s["sha256"]),
                    )
                    for s in raw["sealed"]
                ),
                tail=tuple(
                    SegmentEntry(
                        str(t["name"]),
                        int(t["first"]),
                        None if t["last"] is None else int(t["last"]),
                        None if t["size"] is None else int(t["size"]),
                        None if t["sha256"] is None else str(t["sha256"]),
                    )
                    for t in raw["tail"]
                ),
                end=None if raw["end"] is None else int(raw["end"]),
                finished=bool(raw["finished"]),
                generation=int(raw["generation"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LogCorruptionError(path, 0, f"field missing or malformed: {exc}") from None
        if shape.chain() != raw["chain"]:
            raise LogCorruptionError(path, 0, "the hash chain does not match the files listed")
        return shape
