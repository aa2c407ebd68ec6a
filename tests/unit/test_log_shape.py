"""The log knows its own shape: a missing, extra, renamed or truncated file is an error naming
it; read() and SQL never disagree; the writer lock cannot be stolen; a dropped writer
releases what it held; the manifest is covered whole; a run records that it finished."""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from admf import EventLog, Kind, empty_events
from admf.errors import AdmfError
from admf.log import (
    LogCorruptionError,
    LogLockedError,
    LogOptions,
    ManifestError,
    RunFinishedError,
    query,
)


def events(n: int, start: int = 0) -> np.ndarray:
    ev = empty_events(n)
    i = np.arange(start, start + n)
    ev["ts"] = 1_000 + i
    ev["kind"] = Kind.TRADE
    ev["price"] = 7_000_000_000 + i
    ev["qty"] = i + 1
    return ev


def build(root: Path, *, close: bool = True) -> Path:
    """A log of 1,500 events: sealed files of 500, a closed segment and a live one."""
    log = EventLog.create(
        root, "s", options=LogOptions(group_events=100, segment_events=500, auto_seal=False)
    )
    for i in range(15):
        log.append(events(100, 100 * i))
    log.seal()  # 1..1500 sealed in three files
    for i in range(15, 22):
        log.append(events(100, 100 * i))  # 1501..2200: a closed segment and a live one
    path = log.path
    if close:
        log.close()
    else:
        del log
        gc.collect()
    return path


def test_missing_last_sealed_file_or_last_segment_is_an_error_naming_it(tmp_path: Path) -> None:
    run = build(tmp_path / "a")
    last_sealed = sorted(run.glob("events-*.parquet"))[-1]
    last_sealed.unlink()
    for read_only in (True, False):
        with pytest.raises(LogCorruptionError, match="missing") as info:
            EventLog.open(run, read_only=read_only)
        assert info.value.path == last_sealed
    run = build(tmp_path / "b", close=False)  # a crashed writer: the live segment is listed
    last_segment = sorted((run / "tail").iterdir())[-1]
    last_segment.unlink()
    with pytest.raises(LogCorruptionError, match="segment is missing") as info:
        EventLog.open(run, read_only=True)
    assert info.value.path == last_segment


def test_a_renamed_sealed_file_is_refused_and_no_seq_is_appended_twice(tmp_path: Path) -> None:
    run = build(tmp_path)
    files = sorted(run.glob("events-*.parquet"))
    shorter = run / files[-1].name.replace("00000000000000001500", "00000000000000001400")
    files[-1].rename(shorter)
    with pytest.raises(LogCorruptionError) as info:
        EventLog.open(run, read_only=True)
    assert info.value.path in (files[-1], shorter)
    with pytest.raises(LogCorruptionError):
        EventLog.open(run)  # a writer is refused too: it cannot append seqs that exist
    with pytest.raises(LogCorruptionError):
        query(run, "SELECT count(*) FROM events")


def test_extra_and_duplicated_files_are_errors_naming_them(tmp_path: Path) -> None:
    run = build(tmp_path)
    first = sorted(run.glob("events-*.parquet"))[0]
    copy = run / first.name.replace("-0000000000000000000", "-9000000000000000000", 1)
    shutil.copy(first, copy)
    with pytest.raises(LogCorruptionError, match="not in the log's shape record") as info:
        EventLog.open(run, read_only=True)
    assert info.value.path == copy
    copy.unlink()
    segment = sorted((run / "tail").iterdir())[0]
    extra = segment.with_name("seg-00000000000000009999.admfseg")
    shutil.copy(segment, extra)
    with pytest.raises(LogCorruptionError, match="not in the log's shape record") as info:
        EventLog.open(run, read_only=True)
    assert info.value.path == extra


def test_a_truncated_closed_log_is_refused_not_read_as_a_prefix(tmp_path: Path) -> None:
    run = build(tmp_path)
    live = sorted((run / "tail").iterdir())[-1]
    data = live.read_bytes()
    with EventLog.open(run, read_only=True) as log:
        assert len(log) == 2200
    # drop the last frame exactly at a frame boundary: a crash could leave that, but this
    # log was closed at seq 2200
    frame = data.rfind(b"ADMF\x02\x00")
    live.write_bytes(data[:frame])
    with pytest.raises(LogCorruptionError) as info:
        EventLog.open(run, read_only=True)
    assert info.value.path == live


def test_read_and_sql_agree_after_reopen_and_seal(tmp_path: Path) -> None:
    run = build(tmp_path)
    with EventLog.open(run, options=LogOptions(group_events=100, segment_events=500)) as log:
        log.append(events(300, 2200))
        log.seal()
        table = log.read()
        assert table.num_rows == 2500
        counts = log.sql("SELECT count(*) AS n, count(DISTINCT seq) AS d FROM events")
        assert counts.to_pylist() == [{"n": 2500, "d": 2500}]
    with EventLog.open(run, read_only=True) as log:
        assert log.read().equals(table)


def test_the_writer_lock_cannot_be_stolen_by_deleting_or_replacing_lock(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "l") as log:
        log.append(events(10))
        lock_file = log.path / "LOCK"
        lock_file.unlink()
        with pytest.raises(LogLockedError, match=f"process {os.getpid()}|unknown"):
            EventLog.open(log.path)
        lock_file.write_text("12345\n")  # replaced by a forged one
        with pytest.raises(LogLockedError):
            EventLog.open(log.path)
        assert log.append(events(5, 10)).first == 11
    with EventLog.open(tmp_path / "run=l") as log:  # closed: the lock is free again
        assert len(log) == 15


def test_lock_as_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "d") as log:
        log.append(events(3))
    (log.path / "LOCK").unlink()
    (log.path / "LOCK").mkdir()
    with pytest.raises(AdmfError, match="LOCK is a directory"):
        EventLog.open(log.path)


def _held(run: Path) -> list[str]:
    """This process's descriptors open on the run directory or a file in it."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target == str(run) or target.startswith(f"{run}/"):
            held.append(target)
    return held


def test_a_writer_dropped_without_close_releases_its_lock_and_descriptors(
    tmp_path: Path,
) -> None:
    log = EventLog.create(tmp_path, "g")
    log.append(events(10))
    log.append_async(events(10, 10)).result()  # the commit thread runs too
    path = log.path.resolve()
    assert _held(path)  # the directory (its lock) and the live segment
    del log
    gc.collect()
    deadline = time.monotonic() + 5
    while _held(path) and time.monotonic() < deadline:
        time.sleep(0.05)  # the commit thread lets go of the log within a fraction of a second
    assert _held(path) == []
    with EventLog.open(path) as again:
        assert len(again) == 20


def test_the_manifest_is_covered_whole(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "m", config={"a": 1}, seed=5) as log:
        log.append(events(3))
    manifest = log.path / "manifest.json"
    original = manifest.read_text()
    for field, value in (
        ("seed", 6),
        ("created_at", "2020-01-01T00:00:00+00:00"),
        ("libraries", {"numpy": "0"}),
    ):
        raw = json.loads(original)
        raw[field] = value
        manifest.write_text(json.dumps(raw))
        with pytest.raises(ManifestError, match="digest does not match"):
            EventLog.open(log.path, read_only=True)
    raw = json.loads(original)
    raw["created_at"] = "yesterday-ish"
    manifest.write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="created_at 'yesterday-ish' is not an ISO 8601"):
        EventLog.open(log.path, read_only=True)
    manifest.write_text(original)
    EventLog.open(log.path, read_only=True).close()


def test_a_forged_manifest_with_its_digest_recomputed_is_refused(tmp_path: Path) -> None:
    from admf.log.manifest import Manifest

    with EventLog.create(tmp_path, "f", config={"a": 1}, seed=5) as log:
        log.append(events(3))
    m = Manifest.read(log.path)
    Manifest(**{**m.__dict__, "seed": 99}).write(log.path)
    with pytest.raises(AdmfError, match="not the one this log was created with"):
        EventLog.open(log.path, read_only=True)


def test_a_run_records_that_it_finished(tmp_path: Path) -> None:
    log = EventLog.create(tmp_path, "fin")
    log.append(events(10))
    assert query(log.path, "SELECT finished FROM runs").to_pylist() == [{"finished": False}]
    log.mark_finished()
    with pytest.raises(RunFinishedError):
        log.append(events(1, 10))
    log.close(seal=True)
    rows = query(log.path, "SELECT run, events, finished FROM runs").to_pylist()
    assert rows == [{"run": "fin", "events": 10, "finished": True}]
    with pytest.raises(RunFinishedError, match="finished"):
        EventLog.open(log.path)
    with EventLog.open(log.path, read_only=True) as reader:
        assert reader.finished
        assert len(reader) == 10


def test_a_renamed_run_directory_shows_under_one_run_id(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "orig") as log:
        log.append(events(20))
        log.seal()
        log.append(events(5, 20))
    log.path.rename(tmp_path / "run=renamed")
    rows = query(tmp_path, "SELECT DISTINCT run FROM events").to_pylist()
    assert rows == [{"run": "orig"}]
    shutil.copytree(tmp_path / "run=renamed", tmp_path / "run=copy")
    with pytest.raises(AdmfError, match="hold the same run 'orig'"):
        query(tmp_path, "SELECT 1")


def test_sql_is_not_the_weaker_path_for_a_file_damaged_after_open(tmp_path: Path) -> None:
    run = build(tmp_path)
    with EventLog.open(run, read_only=True) as log:
        expected = log.sql("SELECT sum(price) AS p, sum(qty) AS q FROM events").to_pylist()
        sealed = log.sealed_files[1]
        data = bytearray(sealed.read_bytes())
        stat = sealed.stat()
        for at in range(4, len(data) - 8, max(1, len(data) // 40)):
            damaged = bytearray(data)
            damaged[at] ^= 0x10
            sealed.chmod(0o644)
            sealed.write_bytes(bytes(damaged))
            os.utime(sealed, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime put back
            with pytest.raises(LogCorruptionError) as info:
                log.sql("SELECT sum(price) AS p, sum(qty) AS q FROM events")
            assert info.value.path == sealed
            with pytest.raises(LogCorruptionError):
                log.read()
        sealed.write_bytes(bytes(data))  # repaired: both paths answer again
        assert log.sql("SELECT sum(price) AS p, sum(qty) AS q FROM events").to_pylist() == expected
        assert log.read().num_rows == 2200
