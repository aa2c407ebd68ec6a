"""`EventLog`: the append-only, crash-safe log of one run.

The log is the truth; what it acknowledged it never loses, and it never returns wrong data:
a history is either exactly what was acknowledged or loudly not.

A run's directory, ``<root>/run=<run_id>/``, holds::

    manifest.json                                   what the run was (written once, atomically)
    shape.json                                      which files hold which seqs (see shape.py)
    LOCK                                            which process writes (the lock is the dir's)
    events-<first>-<last>-<crc32>.parquet           sealed, immutable (zstd, page checksums)
    tail/seg-<first>.admfseg                        the live tail: framed, checksummed segments
    quarantine/                                     damaged segments moved aside

Sequence numbers: every row has a ``seq``, contiguous from 1. An append whose events all have
``seq == 0`` gets the next seqs from the log; an append whose events all carry seqs (the
kernel's sequencer assigns them) must continue the log without a gap. A seq is an event's id:
an event whose seq is already in the log is not stored again (a retry after a crash that lost
the acknowledgement is harmless); if its content differs from the stored event, the append is
refused.

Durability (`LogOptions`): an append, or a commit group of them, is written as frames of at
most ``group_events`` events whose last one carries a commit mark, then fsynced once. It is in
the log whole or not at all: a write or fsync that fails cuts the segment back to where the
group began before the error is raised, and recovery cuts frames that never got their commit
mark. `EventLog.append` returns the seq range only once its events are durable;
`EventLog.append_async` returns a future that a background group commit resolves.

Modules: `options` (settings), `lock` (the one writer), `shape` (the record of files),
`commit` (appends and commit units), `reading` (rows in seq order),
`recovery` (opening), `seal` (Parquet), `segment` (frames), `sql` (DuckDB), `verify`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import pyarrow as pa

from admf.errors import AdmfError
from admf.events import FIELD_NAMES, EventArray, from_arrow
from admf.log.commit import (
    Append,
    LogWriteError,
    SeqRange,
    Unit,
    encode_unit,
    given_first,
    same_events,
    with_seqs,
)
from admf.log.lock import WriterLock
from admf.log.manifest import MANIFEST_NAME, Manifest, check_run_id, new_run_id
from admf.log.options import LogOptions
from admf.log.payload import LOG_SCHEMA, PAYLOAD_COLUMN, Appendable, Payload, to_log_batch
from admf.log.reading import iter_rows, slice_rows, unify
from admf.log.recovery import (
    TAIL_DIR,
    ListingChangedError,
    LiveSegment,
    Recovered,
    log_files,
    recover,
)
from admf.log.seal import SealedFile, seal_table
from admf.log.segment import SegmentWriter, TornTail, fsync_dir, segment_name
from admf.log.shape import SHAPE_NAME, SealedEntry, SegmentEntry, Shape, file_sha256

_LOG: Final[logging.Logger] = logging.getLogger("admf.log")
_LOG_COLUMNS: Final[frozenset[str]] = frozenset(LOG_SCHEMA.names)
_IDLE_S: Final[float] = 0.2
"""How long a background thread waits before it checks that its log still exists."""
_READER_ATTEMPTS: Final[int] = 30
"""How many times a reader looks again at a log whose writer changed its files meanwhile,
waiting a little longer each time (about 3 s in all): a writer sealing small segments under
load can win the race several times in a row."""


class RunFinishedError(AdmfError):
    """The run was marked finished: its log takes no more events."""


def _commit_loop(ref: weakref.ReferenceType[EventLog]) -> None:
    """The group commit thread. It holds its log only while it works, so a log dropped
    without `close` is still collected (and its lock and descriptors released)."""
    while True:
        log = ref()
        if log is None or not log._wait_for_group(_IDLE_S):
            return
        del log


def _seal_loop(ref: weakref.ReferenceType[EventLog], wanted: threading.Event) -> None:
    """The background sealer, holding its log only while it works (see `_commit_loop`)."""
    while True:
        if not wanted.wait(_IDLE_S):
            if ref() is None:
                return
            continue
        wanted.clear()
        log = ref()
        if log is None:
            return
        try:
            log._seal_closed()
        except Exception as exc:  # the segments stay; seal() or the next open retries
            _LOG.error("event log %s: sealing failed: %s", log.path, exc)
        if log._closing:
            return
        del log


class EventLog:
    """The event log of one run: append, read back in seq order, seal, query with SQL.

    Create one with `EventLog.create` or open one with `EventLog.open`; use it as a context
    manager or call `close`."""

    def __init__(
        self,
        run_dir: Path,
        *,
        read_only: bool,
        options: LogOptions,
        verify: bool,
        contents: Mapping[str, bytes] | None = None,
    ) -> None:
        self.path = run_dir
        self.read_only = read_only
        self.options = options
        self.manifest = Manifest.read(run_dir)
        self.recovery: list[TornTail] = []
        """Torn tails found (and, for a writer, cut) when the log was opened."""
        self._io_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._seal_lock = threading.Lock()
        self._shape_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: list[Append] = []
        self._pending_rows = 0
        self._pending_since = 0.0
        self._closing = False
        self._closed = False
        self._failed: BaseException | None = None
        self._committer: threading.Thread | None = None
        self._sealer: threading.Thread | None = None
        self._seal_wanted = threading.Event()
        self._sealed: list[SealedFile] = []
        self._tail: list[LiveSegment] = []
        self._active: LiveSegment | None = None
        self._next_seq = 1
        self._version = 0
        self._shape: Shape | None = None
        self._query: Any = None
        self._columns: dict[str, pa.DataType] | None = None
        self._lock = None if read_only else WriterLock(run_dir)
        try:
            self._load(verify=verify, contents=contents)
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
        options: LogOptions | None = None,
    ) -> EventLog:
        """Creates the log of a new run at ``<root>/run=<run_id>`` (a fresh id if None) and
        opens it for writing. ``config`` and ``seed`` go into the manifest."""
        options = options or LogOptions()
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
        Shape(manifest.digest).write(run_dir)
        fsync_dir(root_path)
        return cls(run_dir, read_only=False, options=options, verify=False)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        verify: bool = True,
        options: LogOptions | None = None,
        contents: Mapping[str, bytes] | None = None,
    ) -> EventLog:
        """Opens the log of a run (its ``run=<id>`` directory). The directory must match the
        log's shape record (`admf.log.shape`); ``verify`` also hashes every sealed file (and
        the tail of a closed log). A writer recovers the log: it cuts a torn tail back to the
        last whole append (listed in `recovery`) and quarantines a segment damaged elsewhere
        (raising `LogCorruptionError`). A reader (``read_only``) changes nothing and does not
        lock.

        A reader may be given the bytes of the files `files` lists (``contents``, by those
        names; a file left out is read from disk): they are verified and decoded exactly as
        the files would be, so a caller can read them its own way (the replay adapter reads
        them with aiofiles). Given bytes are always verified, whatever ``verify`` says."""
        run_dir = Path(path)
        if not run_dir.is_dir():
            raise AdmfError(f"no event log at {run_dir}: not a directory")
        if contents and not read_only:
            raise AdmfError("only a read-only log takes its files' bytes from the caller")
        return cls(
            run_dir,
            read_only=read_only,
            options=options or LogOptions(),
            verify=verify,
            contents=contents,
        )

    @staticmethod
    def files(path: str | os.PathLike[str]) -> list[str]:
        """The files a reader of the log at ``path`` reads events from, as its shape record
        lists them now: paths relative to the run directory, in seq order (the keys of
        `open`'s ``contents``)."""
        run_dir = Path(path)
        if not run_dir.is_dir():
            raise AdmfError(f"no event log at {run_dir}: not a directory")
        return log_files(Shape.read(run_dir))

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _load(self, *, verify: bool, contents: Mapping[str, bytes] | None = None) -> None:
        """Reads the shape record and checks the files against it; a reader looks again when
        a concurrent writer changed the files between the two."""
        attempts = 1 if not self.read_only else _READER_ATTEMPTS
        for attempt in range(attempts):
            try:
                shape = Shape.read(self.path)
                if shape.manifest_sha256 != self.manifest.digest:
                    raise AdmfError(
                        f"{self.path / MANIFEST_NAME}: the manifest is not the one this log "
                        "was created with (its digest differs from the shape record's)"
                    )
                found = recover(
                    self.path,
                    shape,
                    writer=not self.read_only,
                    verify=verify,
                    sync=self.options.durable,
                    contents=contents,
                )
                self._adopt(found)
                return
            except (FileNotFoundError, ListingChangedError):
                if attempt == attempts - 1:
                    raise
                time.sleep(min(0.2, 0.005 * (attempt + 1)))

    def _adopt(self, found: Recovered) -> None:
        with self._state_lock:
            self._shape = found.shape
            self._sealed = found.sealed
            self._tail = found.tail
            self._next_seq = found.next_seq
            self.recovery = found.torn
            self._version += 1

    def _resume(self) -> None:
        """A writer: refuses a finished run, records the log as open again, reopens the last
        segment for appending and seals closed ones left unsealed."""
        assert self._shape is not None
        if self._shape.finished:
            raise RunFinishedError(
                f"the run {self.run_id} finished (its log ends at seq {self.last_seq}); a "
                "finished run takes no more events: open it with read_only=True"
            )
        (self.path / TAIL_DIR).mkdir(exist_ok=True)
        if self._tail:
            last = self._tail[-1]
            if not last.closed:
                size = last.path.stat().st_size
                last.writer = SegmentWriter(last.path, last.first_seq, create=False, end=size)
                self._active = last
        self._record_shape(close=False)
        if self.options.auto_seal and any(s.closed for s in self._tail):
            self._start_sealer()

    # ---- the shape record ----------------------------------------------------------------

    def _record_shape(self, *, close: bool | None = None, finished: bool | None = None) -> None:
        """Writes the shape record of the current files; with ``close``, where the log ends
        and the hash of every tail segment (None: closed if the record was)."""
        with self._shape_lock:
            assert self._shape is not None
            if close is None:
                close = self._shape.closed
            with self._state_lock:
                sealed = tuple(
                    SealedEntry(s.name, s.first_seq, s.last_seq, s.size, s.sha256)
                    for s in self._sealed
                )
                tail = [(s.path, s.first_seq, s.count, s.closed) for s in self._tail]
                end = self._next_seq - 1
            entries = []
            for path, first, count, closed in tail:
                if close:
                    size = path.stat().st_size
                    entries.append(
                        SegmentEntry(path.name, first, first + count - 1, size, file_sha256(path))
                    )
                else:
                    entries.append(
                        SegmentEntry(path.name, first, first + count - 1 if closed else None)
                    )
            shape = self._shape.evolve(
                sealed=sealed,
                tail=tuple(entries),
                end=end if close else None,
                finished=self._shape.finished if finished is None else finished,
            )
            shape.write(self.path, sync=self.options.durable)
            self._shape = shape

    @property
    def finished(self) -> bool:
        """Whether the run was marked finished (`mark_finished`)."""
        return self._shape is not None and self._shape.finished

    def mark_finished(self) -> None:
        """Records that the run finished: everything pending is committed, the log's end and
        the hashes of its files are recorded, and the log takes no more events. Replays and
        reports of a run never marked finished say that it did not finish."""
        self.flush()
        with self._io_lock:
            self._record_shape(close=True, finished=True)

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

    @property
    def chain(self) -> str:
        """The head of the log's hash chain as last recorded (see `admf.log.shape`)."""
        assert self._shape is not None
        return self._shape.chain()

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
        range once they are durable under the fsync policy. All or nothing: if the disk fails
        the append (`LogWriteError`), none of its events stay in the log.
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
                    target=_commit_loop,
                    args=(weakref.ref(self),),
                    name="admf-log-commit",
                    daemon=True,
                )
                self._committer.start()
            self._cond.notify_all()
        return item.future

    def flush(self) -> None:
        """Commits every pending async append now and waits until they are durable."""
        self._check_open()
        self._commit()

    def _check_open(self) -> None:
        if self.read_only:
            raise AdmfError(f"the event log {self.path} was opened read-only")
        if self._closed or self._closing:
            raise AdmfError(f"the event log {self.path} is closed")
        if self._failed is not None:
            raise AdmfError(
                f"the event log {self.path} failed to write ({self._failed}); reopen it to recover"
            )

    def _check_writable(self) -> None:
        self._check_open()
        if self.finished:
            raise RunFinishedError(
                f"the run {self.run_id} was marked finished; its log takes no more events"
            )

    def _submit(
        self, events: Appendable, payloads: Sequence[Payload | None] | Payload | None
    ) -> Append:
        self._check_writable()
        batch = to_log_batch(events, payloads)
        item = Append(batch, given_first(batch))
        with self._cond:
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append(item)
            self._pending_rows += batch.num_rows
        return item

    def _wait_for_group(self, timeout: float) -> bool:
        """Waits (at most ``timeout``) for a group to fill or age, and commits it; False once
        the log is closing with nothing pending."""
        with self._cond:
            if not self._pending:
                if self._closing:
                    return False
                self._cond.wait(timeout)
                if not self._pending:
                    return not self._closing
            deadline = self._pending_since + self.options.group_ms / 1000
            while self._pending_rows < self.options.group_events and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        self._commit()
        return True

    def _commit(self) -> None:
        with self._io_lock:
            with self._cond:
                items, self._pending = self._pending, []
                self._pending_rows = 0
            if items:
                self._write_group(items)

    def _write_group(self, items: list[Append]) -> None:
        """Resolves the items into commit units (one per append under ``"always"``, else one
        for the group) and writes them; a unit that fails is cut back whole, and it and the
        units after it fail."""
        units: list[Unit] = []
        if self._failed is not None:
            for item in items:
                item.future.set_exception(self._failed)
            return
        for item in items:
            if not units or self.options.fsync == "always":
                units.append(Unit(self._next_seq))
            unit = units[-1]
            try:
                rows, seqs = self._resolve(item, [r for u in units for r in u.rows])
            except AdmfError as exc:
                item.future.set_exception(exc)
                continue
            if rows is not None and rows.num_rows:
                unit.rows.append(rows)
            unit.items.append((item, seqs))
        for i, unit in enumerate(units):
            try:
                self._write_unit(unit)
            except BaseException as exc:
                self._next_seq = unit.start_seq
                self._columns = None  # extra columns of the lost unit are forgotten
                for later in units[i:]:
                    for item, _ in later.items:
                        item.future.set_exception(exc)
                if isinstance(exc, AdmfError):
                    return
                self._failed = exc
                raise
            for item, seqs in unit.items:
                item.future.set_result(seqs)

    def _resolve(
        self, item: Append, pending: list[pa.RecordBatch]
    ) -> tuple[pa.RecordBatch | None, SeqRange]:
        """The rows of ``item`` to write (seqs assigned, duplicates dropped) and its range;
        ``pending`` holds the rows resolved before it in this group, not yet written."""
        batch = item.batch
        n = batch.num_rows
        self._check_extra_columns(batch.schema)
        if item.given_first is None:
            if n == 0:
                return None, SeqRange(self._next_seq, self._next_seq - 1)
            first = self._next_seq
            self._next_seq += n
            return with_seqs(batch, first), SeqRange(first, first + n - 1)
        first = item.given_first
        if first > self._next_seq:
            raise AdmfError(
                f"events start at seq {first} but the log's next seq is {self._next_seq}: "
                "sequenced events must continue the log without a gap"
            )
        seqs = SeqRange(first, first + n - 1)
        overlap = min(n, self._next_seq - first)
        if overlap:
            stop = first + overlap
            stored = unify([*self.iter_batches(first, stop), *slice_rows(pending, first, stop)])
            given = pa.Table.from_batches([batch.slice(0, overlap)])
            if not same_events(stored, given):
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

    def _write_unit(self, unit: Unit) -> None:
        frames = encode_unit(unit.rows, self.options.group_events)
        if not frames:
            return
        count = sum(b.num_rows for b, _ in frames)
        size = sum(len(p) if isinstance(p, bytes) else p.size for _, ps in frames for p in ps)
        first, last = unit.start_seq, unit.start_seq + count - 1
        active = self._room_for(count, size, first)
        writer = active.writer
        assert writer is not None
        mark = writer.size
        try:
            for _, pieces in frames:
                writer.write(pieces)
            if self.options.durable:
                writer.sync()
        except OSError as exc:
            what = f"{active.path}: could not append seqs {first}..{last}: {exc.strerror or exc}"
            try:
                writer.cut(mark, sync=self.options.durable)
            except OSError as again:
                self._failed = LogWriteError(
                    f"{what}; cutting the segment back failed too ({again.strerror or again}): "
                    "the log takes no more appends until it is reopened",
                    exc.errno,
                )
                raise self._failed from exc
            raise LogWriteError(
                f"{what}; none of them were kept (the log ends at seq {first - 1})", exc.errno
            ) from exc
        with self._state_lock:
            active.batches += [b for b, _ in frames]
            active.count += count
            self._version += 1

    def _room_for(self, count: int, size: int, first: int) -> LiveSegment:
        """The segment the next unit goes to: the active one, unless it is full (then a new
        segment, recorded in the shape record before anything is written to it)."""
        active = self._active
        if active is not None and active.writer is not None:
            full = active.count and (
                active.count + count > self.options.segment_events
                or active.writer.size + size > self.options.segment_bytes
            )
            if not full:
                return active
        path = self.path / TAIL_DIR / segment_name(first)
        try:
            writer = SegmentWriter(path, first, create=True)
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            raise LogWriteError(
                f"{path}: could not start a segment: {exc.strerror or exc}", exc.errno
            ) from exc
        fresh = LiveSegment(path, first, writer=writer)
        with self._state_lock:
            if active is not None:
                active.closed = True
            self._tail.append(fresh)
        try:
            self._record_shape()
        except OSError as exc:
            with self._state_lock:
                self._tail.remove(fresh)
                if active is not None:
                    active.closed = False
            writer.close()
            with contextlib.suppress(OSError):
                path.unlink()
            raise LogWriteError(
                f"{self.path / SHAPE_NAME}: could not record a new segment: {exc.strerror or exc}",
                exc.errno,
            ) from exc
        self._active = fresh
        if active is not None and active.writer is not None:
            active.writer.close()
            active.writer = None
            if self.options.auto_seal:
                self._start_sealer()
        return fresh

    def _close_active(self) -> None:
        """Closes the live segment: the next append starts a new one."""
        active = self._active
        if active is None:
            return
        self._active = None
        with self._state_lock:
            active.closed = True
        if active.writer is not None:
            if self.options.durable:
                active.writer.sync()
            active.writer.close()
            active.writer = None

    # ---- sealing -------------------------------------------------------------------------

    def seal(self) -> list[Path]:
        """Seals the whole live tail (the active segment too) into Parquet; returns the new
        sealed files. Later appends start a new segment."""
        self.flush()
        before = set(self.sealed_files)
        with self._io_lock:
            # not recorded here: until its seal is, the record shows it as the live segment,
            # which is what recovery would make of it anyway
            self._close_active()
        self._seal_closed()
        return [p for p in self.sealed_files if p not in before]

    def _start_sealer(self) -> None:
        self._seal_wanted.set()
        if self._sealer is None:
            self._sealer = threading.Thread(
                target=_seal_loop,
                args=(weakref.ref(self), self._seal_wanted),
                name="admf-log-seal",
                daemon=True,
            )
            self._sealer.start()

    def _seal_closed(self) -> list[Path]:
        """Seals the closed segments in order: each sealed file is written, then recorded in
        the shape record (with the segment gone from it), then the segment is removed."""
        out: list[Path] = []
        with self._seal_lock:
            while True:
                with self._state_lock:
                    todo = [s for s in self._tail if s.closed]
                if not todo:
                    return out
                segment = todo[0]
                sealed = None
                if segment.count:
                    sealed = seal_table(
                        unify(segment.batches),
                        self.path,
                        segment.first_seq,
                        sync=self.options.durable,
                    )
                    out.append(sealed.path)
                with self._state_lock:
                    if sealed is not None:
                        self._sealed.append(sealed)
                    self._tail.remove(segment)
                    self._version += 1
                self._record_shape()
                segment.path.unlink()
                if self.options.durable:
                    fsync_dir(segment.path.parent)

    # ---- reading -------------------------------------------------------------------------

    def _snapshot(self) -> tuple[list[SealedFile], list[pa.RecordBatch], int]:
        with self._state_lock:
            batches = [b for s in self._tail for b in s.batches]
            return list(self._sealed), batches, self._version

    def iter_batches(
        self, start: int | None = None, stop: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The rows with ``start <= seq < stop`` as record batches, in seq order. A sealed
        file changed since it was verified is verified again before it is read."""
        sealed, tail, _ = self._snapshot()
        return iter_rows(sealed, tail, start, stop)

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
        ``signals``, ``risk``, ``errors``, ``custom`` and ``runs``; returns an Arrow table.
        Queries only read: see `admf.log.sql` for the sandbox."""
        from admf.log.sql import LogQuery

        if self._query is None:
            self._query = LogQuery([self])
        result: pa.Table = self._query.sql(query)
        return result

    # ---- closing -------------------------------------------------------------------------

    def close(self, *, seal: bool = False) -> None:
        """Commits pending appends, records where the log ends (and the hash of each tail
        segment), stops the background threads and releases the lock; with ``seal`` the live
        tail is sealed first."""
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
                        if self.options.durable and self._failed is None:
                            self._active.writer.sync()
                    self._active.writer.close()
                    self._active.writer = None
            if self._sealer is not None:
                self._seal_wanted.set()
                self._sealer.join()
            if not self.read_only and self._failed is None:
                try:
                    self._record_shape(close=True)
                except OSError as exc:  # the log stays valid as an open (crashed) log
                    _LOG.error("event log %s: could not record its end: %s", self.path, exc)
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
