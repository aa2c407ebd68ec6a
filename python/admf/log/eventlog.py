"""`EventLog`: the append-only, crash-safe log of one run.

The log is the truth; what it acknowledged it never loses, and it never returns wrong data.

A run's directory, ``<root>/run=<run_id>/``, holds::

    manifest.json                                   what the run was (written once, atomically)
    LOCK                                            flock'ed by the one writer
    events-<first>-<last>-<crc32>.parquet           sealed, immutable (zstd, page checksums)
    tail/seg-<first>.admfseg                        the live tail: framed, checksummed segments
    quarantine/                                     damaged segments moved aside

Sequence numbers: every row has a ``seq``, contiguous from 1. An append whose events all have
``seq == 0`` gets the next seqs from the log; an append whose events all carry seqs (the
kernel's sequencer assigns them) must continue the log without a gap. A seq is an event's id:
an event whose seq is already in the log is not stored again (a retry after a crash that lost
the acknowledgement is harmless); if its content differs from the stored event, the append is
refused.

Durability: appends are written in frames of at most ``group_events`` events; ``fsync`` is
``"group"`` (one fsync per frame, the default), ``"always"`` (like ``"group"``, but appends are
never combined: every append call is synced on its own) or ``"never"`` (survives a crash of
the process, not of the machine). `EventLog.append` returns the seq range only once its events
are durable; `EventLog.append_async` returns a future that a background group commit resolves
when its group (at most ``group_events`` events or ``group_ms`` milliseconds) is durable.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, get_args

import numpy as np
import pyarrow as pa

from admf.errors import AdmfError
from admf.events import FIELD_NAMES, EventArray, from_arrow
from admf.log.manifest import Manifest, check_run_id, new_run_id
from admf.log.payload import (
    LOG_SCHEMA,
    PAYLOAD_COLUMN,
    Appendable,
    Payload,
    to_log_batch,
)
from admf.log.seal import SealedFile, seal_table
from admf.log.segment import (
    FILE_HEADER,
    LogCorruptionError,
    SegmentWriter,
    TornTail,
    encode_frame,
    fsync_dir,
    read_segment,
    segment_first_seq,
    segment_name,
    truncate_file,
)

FsyncPolicy = Literal["always", "group", "never"]
_LOG: Final[logging.Logger] = logging.getLogger("admf.log")
_LOG_COLUMNS: Final[frozenset[str]] = frozenset(LOG_SCHEMA.names)
TAIL_DIR: Final[str] = "tail"
QUARANTINE_DIR: Final[str] = "quarantine"
LOCK_NAME: Final[str] = "LOCK"


class LogLockedError(AdmfError):
    """Another process (or another `EventLog` in this one) is writing to the log."""


class _ListingChangedError(LogCorruptionError):
    """Files that do not fit together: damage, or (for a reader) a writer that sealed a
    segment between two directory listings; a reader looks again before it gives up."""


@dataclass(frozen=True, slots=True)
class SeqRange:
    """The seqs of an append, ``first`` to ``last`` inclusive (empty when last < first)."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return max(0, self.last - self.first + 1)


@dataclass
class _Segment:
    path: Path
    first_seq: int
    batches: list[pa.RecordBatch] = field(default_factory=list)
    count: int = 0
    writer: SegmentWriter | None = None
    closed: bool = False
    """Full: no more frames go here, and it waits to be sealed."""


@dataclass
class _Append:
    batch: pa.RecordBatch
    given_first: int | None
    future: Future[SeqRange] = field(default_factory=Future)


def _given_first(batch: pa.RecordBatch) -> int | None:
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


def _with_seqs(batch: pa.RecordBatch, first: int) -> pa.RecordBatch:
    seqs = pa.array(np.arange(first, first + batch.num_rows, dtype=np.uint64))
    return batch.set_column(0, batch.schema.field(0), seqs)


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


def _check_options(
    fsync: str, group_events: int, group_ms: float, segment_events: int, segment_bytes: int
) -> None:
    if fsync not in get_args(FsyncPolicy):
        raise AdmfError(f"fsync must be one of {get_args(FsyncPolicy)}, got {fsync!r}")
    if group_events < 1 or segment_events < 1 or segment_bytes < 1 or group_ms < 0:
        raise AdmfError(
            "group_events, segment_events and segment_bytes must be >= 1 and group_ms >= 0; "
            f"got {group_events}, {segment_events}, {segment_bytes} and {group_ms}"
        )


class EventLog:
    """The event log of one run: append, read back in seq order, seal, query with SQL.

    Create one with `EventLog.create` or open one with `EventLog.open`; use it as a context
    manager or call `close`."""

    def __init__(
        self,
        run_dir: Path,
        *,
        read_only: bool,
        group_events: int,
        group_ms: float,
        fsync: FsyncPolicy,
        segment_events: int,
        segment_bytes: int,
        auto_seal: bool,
        verify: bool,
    ) -> None:
        _check_options(fsync, group_events, group_ms, segment_events, segment_bytes)
        self.path = run_dir
        self.read_only = read_only
        self.group_events = group_events
        self.group_ms = group_ms
        self.fsync: FsyncPolicy = fsync
        self.segment_events = segment_events
        self.segment_bytes = segment_bytes
        self.auto_seal = auto_seal
        self.manifest = Manifest.read(run_dir)
        self.recovery: list[TornTail] = []
        """Torn tails found (and, for a writer, cut) when the log was opened."""
        self._io_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._seal_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: list[_Append] = []
        self._pending_rows = 0
        self._pending_since = 0.0
        self._closing = False
        self._closed = False
        self._failed: BaseException | None = None
        self._committer: threading.Thread | None = None
        self._sealer: threading.Thread | None = None
        self._seal_wanted = threading.Event()
        self._sealed: list[SealedFile] = []
        self._tail: list[_Segment] = []
        self._active: _Segment | None = None
        self._next_seq = 1
        self._version = 0
        self._lock_fd = -1
        self._query: Any = None
        self._columns: dict[str, pa.DataType] | None = None
        if not read_only:
            self._take_lock()
        try:
            self._load(verify=verify)
            if not read_only:
                self._resume()
        except BaseException:
            self._release_lock()
            raise

    # ---- opening ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        run_id: str | None = None,
        *,
        config: dict[str, Any] | None = None,
        seed: int | None = None,
        group_events: int = 10_000,
        group_ms: float = 5.0,
        fsync: FsyncPolicy = "group",
        segment_events: int = 1_000_000,
        segment_bytes: int = 128 << 20,
        auto_seal: bool = True,
    ) -> EventLog:
        """Creates the log of a new run at ``<root>/run=<run_id>`` (a fresh id if None) and
        opens it for writing. ``config`` and ``seed`` go into the manifest."""
        _check_options(fsync, group_events, group_ms, segment_events, segment_bytes)
        run_id = check_run_id(run_id) if run_id is not None else new_run_id()
        manifest = Manifest.new(run_id, config, seed)
        root_path = Path(root)
        root_path.mkdir(parents=True, exist_ok=True)
        run_dir = root_path / f"run={run_id}"
        try:
            run_dir.mkdir()
        except FileExistsError:
            raise AdmfError(f"a run {run_id!r} already exists at {run_dir}") from None
        (run_dir / TAIL_DIR).mkdir()
        manifest.write(run_dir)
        fsync_dir(root_path)
        return cls(
            run_dir,
            read_only=False,
            group_events=group_events,
            group_ms=group_ms,
            fsync=fsync,
            segment_events=segment_events,
            segment_bytes=segment_bytes,
            auto_seal=auto_seal,
            verify=False,
        )

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        group_events: int = 10_000,
        group_ms: float = 5.0,
        fsync: FsyncPolicy = "group",
        segment_events: int = 1_000_000,
        segment_bytes: int = 128 << 20,
        auto_seal: bool = True,
        verify: bool = True,
    ) -> EventLog:
        """Opens the log of a run (its ``run=<id>`` directory). A writer recovers the log:
        it validates every frame, cuts a torn tail back to the last whole frame (listed in
        `recovery`) and quarantines a segment damaged elsewhere (raising
        `LogCorruptionError`). A reader (``read_only``) changes nothing and does not lock.
        ``verify`` checks every sealed file's CRC-32 on open."""
        run_dir = Path(path)
        if not run_dir.is_dir():
            raise AdmfError(f"no event log at {run_dir}: not a directory")
        return cls(
            run_dir,
            read_only=read_only,
            group_events=group_events,
            group_ms=group_ms,
            fsync=fsync,
            segment_events=segment_events,
            segment_bytes=segment_bytes,
            auto_seal=auto_seal,
            verify=verify,
        )

    def _take_lock(self) -> None:
        path = self.path / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LogLockedError(
                f"the event log {self.path} is already open for writing (by process {holder}); "
                "a log has one writer at a time: close the other writer, or open this one "
                "with read_only=True"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = -1

    def _load(self, *, verify: bool) -> None:
        """Finds the sealed files and segments and validates them; a reader retries when a
        concurrent writer sealed a segment between two directory listings."""
        attempts = 1 if not self.read_only else 5
        for attempt in range(attempts):
            try:
                self._load_once(verify=verify)
                return
            except (FileNotFoundError, _ListingChangedError):
                if attempt == attempts - 1:
                    raise
                time.sleep(0.01)

    def _list_sealed(self, *, verify: bool, known: dict[int, SealedFile]) -> dict[int, SealedFile]:
        """The sealed files by first seq, those not in ``known`` parsed (and verified)."""
        sealed: dict[int, SealedFile] = {}
        for path in sorted(self.path.glob("events-*.parquet")):
            parsed = SealedFile.parse(path)
            if parsed is None:
                raise LogCorruptionError(path, 0, "not a sealed file name this log writes")
            if parsed.first_seq in known:
                continue
            if verify:
                parsed.verify()
            sealed[parsed.first_seq] = parsed
        known.update(sealed)
        return sealed

    def _load_once(self, *, verify: bool) -> None:
        quarantine = self.path / QUARANTINE_DIR
        if quarantine.is_dir():
            held = sorted(quarantine.iterdir())
            if held:
                name, _, offset = held[0].name.partition(".at-")
                raise LogCorruptionError(
                    held[0],
                    int(offset) if offset.isdigit() else 0,
                    f"segment {name} was quarantined when the log was last opened; the events "
                    "from it on cannot be trusted. Inspect it and move it out of quarantine/ "
                    "to accept the log up to the damage",
                )
        if not self.read_only:
            for tmp in sorted(self.path.glob("*.tmp")):
                tmp.unlink()
        # The tail is listed before the sealed files: a writer writes a segment's sealed file
        # before it removes the segment, so whatever it seals between the two listings shows
        # up in the second one, and the two always fit together.
        tail_dir = self.path / TAIL_DIR
        segments: dict[int, Path] = {}
        if tail_dir.is_dir():
            for path in sorted(tail_dir.iterdir()):
                first = segment_first_seq(path)
                if first is None:
                    if path.name.endswith(".tmp") and not self.read_only:
                        path.unlink()
                        continue
                    raise LogCorruptionError(path, 0, "not a segment file name")
                segments[first] = path
        sealed_seen: dict[int, SealedFile] = {}
        sealed = self._list_sealed(verify=verify, known=sealed_seen)
        last_segment = max(segments) if segments else 0
        expected = 1
        kept_sealed: list[SealedFile] = []
        tail: list[_Segment] = []
        recovery: list[TornTail] = []
        while True:
            if expected in sealed:
                done = sealed.pop(expected)
                kept_sealed.append(done)
                stale = segments.pop(expected) if expected in segments else None
                if stale is not None and not self.read_only:
                    # The segment was sealed but not yet removed when the writer stopped.
                    stale.unlink()
                    fsync_dir(tail_dir)
                expected = done.last_seq + 1
                continue
            if expected not in segments:
                break
            path = segments.pop(expected)
            try:
                segment, torn = self._scan(path, expected, is_last=expected == last_segment)
            except FileNotFoundError:
                # A writer sealed the segment after the listings: its sealed file is there now.
                sealed.update(self._list_sealed(verify=verify, known=sealed_seen))
                if expected not in sealed:
                    raise
                continue
            if torn is not None:
                recovery.append(torn)
            if segment is not None:
                tail.append(segment)
                expected = segment.first_seq + segment.count
        leftover = sorted([s.path for s in sealed.values()] + list(segments.values()))
        if leftover:
            raise _ListingChangedError(
                leftover[0], 0, f"does not continue the log, which ends before seq {expected}"
            )
        for segment in tail[:-1]:
            segment.closed = True
        for torn in recovery:
            _LOG.warning("event log recovery: %s", torn)
        with self._state_lock:
            self._sealed = kept_sealed
            self._tail = tail
            self._next_seq = expected
            self.recovery = recovery
            self._version += 1

    def _scan(
        self, path: Path, expected: int, *, is_last: bool
    ) -> tuple[_Segment | None, TornTail | None]:
        try:
            result = read_segment(path, expect_first=expected)
            torn = result.torn
            if torn is not None and not is_last:
                raise LogCorruptionError(
                    path, torn.offset, f"damage inside a closed segment ({torn.reason})"
                )
        except LogCorruptionError as exc:
            if not self.read_only:
                self._quarantine(path, exc.offset)
                raise LogCorruptionError(
                    exc.path, exc.offset, exc.reason + f"; segment moved to {QUARANTINE_DIR}/"
                ) from None
            raise
        if torn is not None and not self.read_only:
            if torn.offset < FILE_HEADER.size:
                path.unlink()
                if self.fsync != "never":
                    fsync_dir(path.parent)
                return None, torn
            truncate_file(path, torn.offset, sync=self.fsync != "never")
        return _Segment(path, expected, result.batches, result.count), torn

    def _quarantine(self, path: Path, offset: int) -> None:
        target_dir = self.path / QUARANTINE_DIR
        target_dir.mkdir(exist_ok=True)
        os.replace(path, target_dir / f"{path.name}.at-{offset}")
        fsync_dir(target_dir)
        fsync_dir(path.parent)

    def _resume(self) -> None:
        """Reopens the last segment for appending; seals closed ones left unsealed."""
        (self.path / TAIL_DIR).mkdir(exist_ok=True)
        if self._tail:
            last = self._tail[-1]
            size = last.path.stat().st_size
            last.writer = SegmentWriter(last.path, last.first_seq, create=False, end=size)
            self._active = last
        if self.auto_seal and len(self._tail) > 1:
            self._start_sealer()

    # ---- state ---------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.manifest.run_id

    @property
    def next_seq(self) -> int:
        """The seq the next appended event gets."""
        return self._next_seq

    @property
    def last_seq(self) -> int:
        """The seq of the last event in the log (0 if empty)."""
        return self._next_seq - 1

    def __len__(self) -> int:
        return self._next_seq - 1

    @property
    def sealed_files(self) -> list[Path]:
        with self._state_lock:
            return [s.path for s in self._sealed]

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "writer"
        return f"EventLog({str(self.path)!r}, {mode}, {len(self)} events)"

    # ---- appending -----------------------------------------------------------------------

    def append(
        self, events: Appendable, payloads: Sequence[Payload | None] | Payload | None = None
    ) -> SeqRange:
        """Appends ``events`` (a numpy ``EVENT_DTYPE`` array, an Arrow batch/table of
        ``EVENT_SCHEMA``, an ``admf.Event`` or a list of them) with optional ``payloads`` (one
        per event, None for none; for a single ``Event``, its payload), and returns their seq
        range once they are durable under the fsync policy.
        Events with seq 0 get seqs from the log; sequenced events must continue the log (and
        those already in it are not stored again)."""
        item = self._submit(events, payloads)
        self._commit()
        return item.future.result()

    def append_async(
        self, events: Appendable, payloads: Sequence[Payload | None] | Payload | None = None
    ) -> Future[SeqRange]:
        """Like `append`, but returns at once: the future resolves to the seq range when the
        group holding these events is durable (a group closes at ``group_events`` events or
        ``group_ms`` after its first append)."""
        item = self._submit(events, payloads)
        with self._cond:
            if self._committer is None:
                self._committer = threading.Thread(
                    target=self._commit_loop, name="admf-log-commit", daemon=True
                )
                self._committer.start()
            self._cond.notify_all()
        return item.future

    def flush(self) -> None:
        """Commits every pending async append now and waits until they are durable."""
        self._check_writable()
        self._commit()

    def _check_writable(self) -> None:
        if self.read_only:
            raise AdmfError(f"the event log {self.path} was opened read-only")
        if self._closed or self._closing:
            raise AdmfError(f"the event log {self.path} is closed")
        if self._failed is not None:
            raise AdmfError(
                f"the event log {self.path} failed to write ({self._failed}); reopen it to recover"
            )

    def _submit(
        self, events: Appendable, payloads: Sequence[Payload | None] | Payload | None
    ) -> _Append:
        self._check_writable()
        batch = to_log_batch(events, payloads)
        item = _Append(batch, _given_first(batch))
        with self._cond:
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append(item)
            self._pending_rows += batch.num_rows
        return item

    def _commit_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending and self._closing:
                    return
                deadline = self._pending_since + self.group_ms / 1000
                while self._pending_rows < self.group_events and not self._closing:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            self._commit()

    def _commit(self) -> None:
        with self._io_lock:
            with self._cond:
                items, self._pending = self._pending, []
                self._pending_rows = 0
            if items:
                self._write_group(items)

    def _write_group(self, items: list[_Append]) -> None:
        buffer: list[pa.RecordBatch] = []
        done: list[tuple[_Append, SeqRange]] = []
        try:
            if self._failed is not None:
                raise self._failed
            for item in items:
                try:
                    rows, seqs = self._resolve(item, buffer)
                except AdmfError as exc:
                    item.future.set_exception(exc)
                    continue
                if rows is not None and rows.num_rows:
                    buffer.append(rows)
                done.append((item, seqs))
                if self.fsync == "always":
                    self._write_buffer(buffer)
            self._write_buffer(buffer)
        except BaseException as exc:
            if isinstance(exc, OSError):
                self._failed = exc
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            if not isinstance(exc, OSError | AdmfError):
                raise
            return
        for item, seqs in done:
            item.future.set_result(seqs)

    def _resolve(
        self, item: _Append, buffer: list[pa.RecordBatch]
    ) -> tuple[pa.RecordBatch | None, SeqRange]:
        """The rows of ``item`` to write (seqs assigned, duplicates dropped) and its range."""
        batch = item.batch
        n = batch.num_rows
        self._check_extra_columns(batch.schema)
        if item.given_first is None:
            if n == 0:
                return None, SeqRange(self._next_seq, self._next_seq - 1)
            first = self._next_seq
            self._next_seq += n
            return _with_seqs(batch, first), SeqRange(first, first + n - 1)
        first = item.given_first
        if first > self._next_seq:
            raise AdmfError(
                f"events start at seq {first} but the log's next seq is {self._next_seq}: "
                "sequenced events must continue the log without a gap"
            )
        seqs = SeqRange(first, first + n - 1)
        overlap = min(n, self._next_seq - first)
        if overlap:
            self._write_buffer(buffer)  # the rows to compare with must be readable
            stored = self.read(first, first + overlap)
            given = pa.Table.from_batches([batch.slice(0, overlap)])
            if not _same_events(stored, given):
                raise AdmfError(
                    f"events with seqs {first}..{first + overlap - 1} are already in the log "
                    "with different content; a seq identifies one event"
                )
        if overlap == n:
            return None, seqs
        self._next_seq = first + n
        return batch.slice(overlap), seqs

    def _check_extra_columns(self, schema: pa.Schema) -> None:
        """An extra column keeps the type it first had in this log, so every row stays
        readable as one table."""
        extras = [f for f in schema if f.name not in _LOG_COLUMNS]
        if not extras:
            return
        if self._columns is None:
            known: dict[str, pa.DataType] = {}
            sealed, tail, _ = self._snapshot()
            schemas = [s.schema() for s in sealed] + [b.schema for b in tail]
            for old in schemas:
                for f in old:
                    known.setdefault(f.name, f.type)
            self._columns = known
        for f in extras:
            have = self._columns.get(f.name)
            if have is None:
                continue
            if have != f.type:
                raise AdmfError(
                    f"column {f.name!r} is {have} in this log, the append has {f.type}: "
                    "an extra column keeps its type"
                )
        for f in extras:
            self._columns.setdefault(f.name, f.type)

    def _write_buffer(self, buffer: list[pa.RecordBatch]) -> None:
        """Writes the buffered rows as frames of at most ``group_events`` rows, each durable
        under the policy before it becomes readable."""
        while buffer:
            schema = buffer[0].schema
            run = 0
            while run < len(buffer) and buffer[run].schema == schema:
                run += 1
            part = buffer[:run]
            del buffer[:run]
            batch = (
                part[0]
                if len(part) == 1
                else pa.Table.from_batches(part).combine_chunks().to_batches()[0]
            )
            for start in range(0, batch.num_rows, self.group_events):
                self._write_frame(batch.slice(start, self.group_events))

    def _write_frame(self, batch: pa.RecordBatch) -> None:
        first = int(batch.column(0)[0].as_py())
        pieces = encode_frame(batch, first)
        size = sum(len(p) if isinstance(p, bytes) else p.size for p in pieces)
        active = self._active
        if (
            active is not None
            and active.count
            and (
                active.count + batch.num_rows > self.segment_events
                or (active.writer is not None and active.writer.size + size > self.segment_bytes)
            )
        ):
            self._close_active()
            active = None
        if active is None:
            path = self.path / TAIL_DIR / segment_name(first)
            active = _Segment(path, first, writer=SegmentWriter(path, first, create=True))
            with self._state_lock:
                self._tail.append(active)
            self._active = active
        assert active.writer is not None
        active.writer.write(pieces)
        if self.fsync != "never":
            active.writer.sync()
        with self._state_lock:
            active.batches.append(batch)
            active.count += batch.num_rows
            self._version += 1

    def _close_active(self, *, start_sealer: bool = True) -> None:
        active = self._active
        if active is None:
            return
        self._active = None
        if active.writer is not None:
            if self.fsync != "never":
                active.writer.sync()
            active.writer.close()
            active.writer = None
        active.closed = True
        if self.auto_seal and start_sealer:
            self._start_sealer()

    # ---- sealing -------------------------------------------------------------------------

    def seal(self) -> list[Path]:
        """Seals the whole live tail (the active segment too) into Parquet; returns the new
        sealed files. Later appends start a new segment."""
        self.flush()
        before = set(self.sealed_files)
        with self._io_lock:
            self._close_active(start_sealer=False)
        self._seal_closed()
        return [p for p in self.sealed_files if p not in before]

    def _start_sealer(self) -> None:
        self._seal_wanted.set()
        if self._sealer is None:
            self._sealer = threading.Thread(
                target=self._seal_loop, name="admf-log-seal", daemon=True
            )
            self._sealer.start()

    def _seal_loop(self) -> None:
        while True:
            self._seal_wanted.wait()
            self._seal_wanted.clear()
            try:
                self._seal_closed()
            except Exception as exc:  # the segments stay; seal() or the next open retries
                _LOG.error("event log %s: sealing failed: %s", self.path, exc)
            if self._closing:
                return

    def _seal_closed(self) -> list[Path]:
        out: list[Path] = []
        with self._seal_lock:
            while True:
                with self._state_lock:
                    todo = [s for s in self._tail if s.closed]
                if not todo:
                    return out
                segment = todo[0]
                if segment.count == 0:
                    sealed = None
                else:
                    sealed = seal_table(unify(segment.batches), self.path, segment.first_seq)
                    out.append(sealed.path)
                with self._state_lock:
                    if sealed is not None:
                        self._sealed.append(sealed)
                    self._tail.remove(segment)
                    self._version += 1
                segment.path.unlink()
                fsync_dir(segment.path.parent)

    # ---- reading -------------------------------------------------------------------------

    def _snapshot(self) -> tuple[list[SealedFile], list[pa.RecordBatch], int]:
        with self._state_lock:
            batches = [b for s in self._tail for b in s.batches]
            return list(self._sealed), batches, self._version

    def iter_batches(
        self, start: int | None = None, stop: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The rows with ``start <= seq < stop`` as record batches, in seq order."""
        sealed, tail, _ = self._snapshot()
        lo = 1 if start is None else max(1, start)
        for s in sealed:
            if (stop is not None and s.first_seq >= stop) or s.last_seq < lo:
                continue
            table = s.read()
            a = max(lo, s.first_seq) - s.first_seq
            b = s.count if stop is None else min(stop, s.last_seq + 1) - s.first_seq
            yield from table.slice(a, b - a).to_batches()
        for batch in tail:
            first = int(batch.column(0)[0].as_py())
            last = first + batch.num_rows - 1
            if (stop is not None and first >= stop) or last < lo:
                continue
            a = max(lo, first) - first
            b = batch.num_rows if stop is None else min(stop, last + 1) - first
            yield batch.slice(a, b - a)

    def read(self, start: int | None = None, stop: int | None = None) -> pa.Table:
        """The rows with ``start <= seq < stop`` (all by default) as one Arrow table in seq
        order: the event columns, ``payload_data`` and any extra columns."""
        return unify(list(self.iter_batches(start, stop)))

    def read_events(self, start: int | None = None, stop: int | None = None) -> EventArray:
        """Like `read`, as a numpy ``EVENT_DTYPE`` array (the records only)."""
        return from_arrow(self.read(start, stop).select(list(FIELD_NAMES)))

    def payload(self, seq: int) -> bytes | None:
        """The payload stored with the event ``seq`` (None if it has none)."""
        table = self.read(seq, seq + 1)
        if table.num_rows == 0:
            raise AdmfError(f"no event with seq {seq} in the log (it has {len(self)})")
        value = table.column(PAYLOAD_COLUMN)[0].as_py()
        return None if value is None else bytes(value)

    def tail_table(self) -> pa.Table:
        """The unsealed rows (the live tail), as one table."""
        _, tail, _ = self._snapshot()
        return unify(tail)

    def reload(self) -> None:
        """A reader re-reads the directory to see what the writer added since."""
        if not self.read_only:
            raise AdmfError("reload() is for read-only logs; a writer is always current")
        self._load(verify=True)

    # ---- SQL -----------------------------------------------------------------------------

    def sql(self, query: str) -> pa.Table:
        """Runs ``query`` in DuckDB over this log (sealed Parquet plus the live tail) with the
        views ``events``, ``bars``, ``quotes``, ``trades``, ``book``, ``orders``, ``fills``,
        ``signals``, ``risk``, ``errors``, ``custom`` and ``runs``; returns an Arrow table."""
        from admf.log.sql import LogQuery

        if self._query is None:
            self._query = LogQuery([self])
        result: pa.Table = self._query.sql(query)
        return result

    # ---- closing -------------------------------------------------------------------------

    def close(self, *, seal: bool = False) -> None:
        """Commits pending appends, stops the background threads and releases the lock;
        with ``seal`` the live tail is sealed first."""
        if self._closed:
            return
        try:
            if not self.read_only and self._failed is None:
                if seal:
                    self.seal()
                else:
                    self._commit()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            if self._committer is not None:
                self._committer.join()
            self._commit()
            with self._io_lock:
                if self._active is not None and self._active.writer is not None:
                    with contextlib.suppress(OSError):
                        if self.fsync != "never" and self._failed is None:
                            self._active.writer.sync()
                    self._active.writer.close()
                    self._active.writer = None
                self._active = None
            if self._sealer is not None:
                self._seal_wanted.set()
                self._sealer.join()
            self._closed = True
            if self._query is not None:
                self._query.close()
                self._query = None
            self._release_lock()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _same_events(stored: pa.Table, given: pa.Table) -> bool:
    columns = [*FIELD_NAMES, PAYLOAD_COLUMN]
    a = stored.select(columns)
    b = given.select(columns)
    return bool(a.num_rows == b.num_rows and a.equals(b))
