"""A failed append is all or nothing: ENOSPC or EIO from write, fsync or the start of a new
segment leaves the log exactly as acknowledged, the error names the file, and after space is
freed the same append succeeds once. Injected at the system-call level (``os.write``,
``os.fdatasync``, ``os.fsync``, ``os.ftruncate`` on the log's own descriptors), and on a real
full tmpfs where the machine lets the test mount one."""

from __future__ import annotations

import errno
import gc
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from admf import EventLog, Kind, empty_events
from admf.log import LogOptions, LogWriteError, SeqRange, verify_log


def events(n: int, start: int = 0) -> np.ndarray:
    ev = empty_events(n)
    i = np.arange(start, start + n)
    ev["ts"] = 1_000 + i
    ev["kind"] = Kind.TRADE
    ev["price"] = 3_000_000_000 + i
    ev["qty"] = i + 1
    return ev


class Disk:
    """Fails the log's own system calls on demand: ``space`` bytes may still be written
    (None: unlimited), ``fsync_error``/``truncate_error`` fail the next such call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self.root = str(root.resolve())
        self.space: int | None = None
        self.fsync_error: int | None = None
        self.truncate_error: int | None = None
        self._write, self._fdatasync = os.write, os.fdatasync
        self._fsync, self._ftruncate = os.fsync, os.ftruncate
        monkeypatch.setattr(os, "write", self.write)
        monkeypatch.setattr(os, "fdatasync", self.fdatasync)
        monkeypatch.setattr(os, "fsync", self.fsync)
        monkeypatch.setattr(os, "ftruncate", self.ftruncate)

    def ours(self, fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(self.root)
        except OSError:
            return False

    def write(self, fd: int, data: Any) -> int:
        if self.space is not None and self.ours(fd):
            if self.space <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            data = memoryview(data)[: self.space]  # a short write, then the disk is full
            self.space -= len(data)
        return self._write(fd, data)

    def _sync(self, real: Any, fd: int) -> None:
        if self.fsync_error is not None and self.ours(fd):
            code, self.fsync_error = self.fsync_error, None
            raise OSError(code, os.strerror(code))
        real(fd)

    def fdatasync(self, fd: int) -> None:
        self._sync(self._fdatasync, fd)

    def fsync(self, fd: int) -> None:
        self._sync(self._fsync, fd)

    def ftruncate(self, fd: int, size: int) -> None:
        if self.truncate_error is not None and self.ours(fd):
            raise OSError(self.truncate_error, os.strerror(self.truncate_error))
        self._ftruncate(fd, size)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Disk:
    return Disk(monkeypatch, tmp_path)


OPTIONS = LogOptions(group_events=1_000, segment_events=100_000)


def test_enospc_in_the_middle_of_a_multi_frame_append_keeps_nothing(
    disk: Disk, tmp_path: Path
) -> None:
    log = EventLog.create(tmp_path, "full", options=OPTIONS)
    log.append(events(500))
    before = log.read()
    (segment,) = (log.path / "tail").iterdir()
    size = segment.stat().st_size
    disk.space = 60_000  # room for a few of the five frames of the next append
    with pytest.raises(LogWriteError, match="No space left on device") as info:
        log.append(events(5_000, 500))
    assert str(segment) in str(info.value)
    assert "none of them were kept" in str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert len(log) == 500
    assert log.read().equals(before)
    assert segment.stat().st_size == size  # cut back to where the append began
    disk.space = None  # space freed: the same append succeeds, once
    assert log.append(events(5_000, 500)) == SeqRange(501, 5_500)
    log.close()
    with EventLog.open(log.path, read_only=True) as again:
        table = again.read()
        assert table.num_rows == 5_500
        assert table.column("seq").to_pylist() == list(range(1, 5_501))
    assert verify_log(log.path).ok


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_failed_fsync_cuts_the_append_back(disk: Disk, tmp_path: Path, code: int) -> None:
    with EventLog.create(tmp_path, "sync", options=OPTIONS) as log:
        log.append(events(100))
        disk.fsync_error = code
        with pytest.raises(LogWriteError, match=os.strerror(code)):
            log.append(events(2_500, 100))
        assert len(log) == 100
        assert log.append(events(10, 100)) == SeqRange(101, 110)
    with EventLog.open(log.path, read_only=True) as again:
        assert len(again) == 110


def test_a_failed_group_commit_fails_every_future_in_it(disk: Disk, tmp_path: Path) -> None:
    options = LogOptions(group_events=10_000, group_ms=50)
    with EventLog.create(tmp_path, "async", options=options) as log:
        log.append(events(10))
        disk.space = 0
        futures = [log.append_async(events(100, 10 + 100 * i)) for i in range(5)]
        for future in futures:
            with pytest.raises(LogWriteError):
                future.result(timeout=10)
        disk.space = None
        assert len(log) == 10
        assert log.append(events(100, 10)) == SeqRange(11, 110)


def test_when_even_the_cut_fails_the_log_stops_and_recovery_drops_the_append(
    disk: Disk, tmp_path: Path
) -> None:
    log = EventLog.create(tmp_path, "stuck", options=OPTIONS)
    log.append(events(300))
    disk.space = 30_000
    disk.truncate_error = errno.EIO
    with pytest.raises(LogWriteError, match="cutting the segment back failed too"):
        log.append(events(5_000, 300))
    disk.space, disk.truncate_error = None, None
    with pytest.raises(Exception, match="failed to write"):
        log.append(events(1, 300))
    path = log.path
    del log  # the process gives up on it (as if it died)
    gc.collect()
    with EventLog.open(path) as again:  # the partial frames have no commit mark: cut
        assert len(again) == 300
        assert again.recovery
        assert again.append(events(5_000, 300)) == SeqRange(301, 5_300)


def test_a_new_segment_that_cannot_be_started_names_it(disk: Disk, tmp_path: Path) -> None:
    options = LogOptions(group_events=100, segment_events=200, auto_seal=False)
    with EventLog.create(tmp_path, "rot", options=options) as log:
        log.append(events(200))
        disk.space = 0  # the next append needs a new segment
        with pytest.raises(LogWriteError, match="seg-00000000000000000201") as info:
            log.append(events(50, 200))
        assert "No space left" in str(info.value)
        disk.space = None
        assert log.append(events(50, 200)) == SeqRange(201, 250)
    assert verify_log(log.path).ok


def test_an_interrupted_multi_frame_append_is_dropped_on_recovery(tmp_path: Path) -> None:
    log = EventLog.create(tmp_path, "torn", options=OPTIONS)
    log.append(events(100))
    log.append(events(5_000, 100))  # five frames, the last one with the commit mark
    (segment,) = (log.path / "tail").iterdir()
    path = log.path
    del log
    gc.collect()
    data = segment.read_bytes()
    last_frame = data.rfind(b"ADMF\x02\x00")
    segment.write_bytes(data[:last_frame])  # the commit frame never reached the disk
    with EventLog.open(path) as again:
        assert len(again) == 100  # not 4,100: the append is in whole or not at all
        assert "not completed" in str(again.recovery[0])


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk(small_tmpfs: Path) -> None:
    log = EventLog.create(small_tmpfs, "real", options=OPTIONS)
    acknowledged = 0

    def fill() -> None:
        nonlocal acknowledged
        for _ in range(1_000):
            log.append(events(5_000, acknowledged))
            acknowledged += 5_000

    with pytest.raises(LogWriteError, match="No space left on device"):
        fill()
    assert len(log) == acknowledged
    path = log.path
    del log  # dropped unclosed: closing would need space to record the end
    gc.collect()
    with EventLog.open(path, read_only=True) as reader:
        assert reader.read().column("seq").to_pylist() == list(range(1, acknowledged + 1))
    # space is freed (the tmpfs grows): the log reopens and appends continue
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_tmpfs)], check=True)
    with EventLog.open(path) as log:
        assert log.append(events(5_000, acknowledged)).first == acknowledged + 1
    report = verify_log(path)
    assert report.ok
    assert report.events == acknowledged + 5_000
