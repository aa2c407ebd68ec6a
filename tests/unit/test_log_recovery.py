"""Recovery: torn tails are cut back to the last whole frame; damage elsewhere is an error
naming the file and offset, and the segment is quarantined; power loss at any byte and any
single flipped byte never give wrong data."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from admf import EventLog, empty_events
from admf.events import Kind
from admf.log import LogCorruptionError, LogOptions, SeqRange
from admf.log.segment import FILE_HEADER, FRAME_HEADER


def make_events(n: int, start: int = 0) -> np.ndarray:
    ev = empty_events(n)
    i = np.arange(start, start + n, dtype=np.int64)
    ev["ts"] = 1_000 + i
    ev["kind"] = Kind.TRADE
    ev["price"] = 5_000_000_000 + i
    ev["qty"] = i + 1
    return ev


def strip_seq(ev: np.ndarray) -> np.ndarray:
    out = ev.copy()
    out["seq"] = 0
    return out


def small_log(root: Path, frames: int = 3, per_frame: int = 2) -> Path:
    """A log whose tail is one segment of ``frames`` frames, left as a crash leaves it;
    returns the run directory."""
    log = EventLog.create(root, "r", options=LogOptions(group_events=per_frame, auto_seal=False))
    for f in range(frames):
        log.append(make_events(per_frame, start=f * per_frame))
    path = log.path
    del log
    gc.collect()  # as a killed process: the end is not recorded, the lock is released
    return path


def segment_of(run_dir: Path) -> Path:
    (segment,) = sorted((run_dir / "tail").iterdir())
    return segment


def frame_ends(data: bytes) -> list[int]:
    """Byte offsets where each frame of a segment ends."""
    ends = []
    offset = FILE_HEADER.size
    while offset < len(data):
        length = int.from_bytes(data[offset + 20 : offset + 24], "little")
        offset += FRAME_HEADER.size + length
        ends.append(offset)
    return ends


def test_torn_tail_is_cut_back_and_reported_and_appends_resume(tmp_path: Path) -> None:
    run_dir = small_log(tmp_path)
    segment = segment_of(run_dir)
    whole = segment.stat().st_size
    with open(segment, "ab") as f:
        f.write(b"ADMF\x01\x00\x00\x00partial frame")
    with EventLog.open(run_dir) as log:
        assert len(log.recovery) == 1
        assert log.recovery[0].offset == whole
        assert "torn tail" in str(log.recovery[0])
        assert segment.stat().st_size == whole
        assert len(log) == 6
        assert log.append(make_events(2, start=6)) == SeqRange(7, 8)
    with EventLog.open(run_dir, read_only=True) as log:
        assert log.recovery == []
        assert np.array_equal(strip_seq(log.read_events()), make_events(8))


def test_power_loss_at_every_byte_offset_gives_a_prefix(tmp_path: Path) -> None:
    run_dir = small_log(tmp_path / "src", frames=2)
    data = segment_of(run_dir).read_bytes()
    ends = frame_ends(data)
    expected = make_events(4)
    path = segment_of(run_dir)
    shape = (run_dir / "shape.json").read_bytes()
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        (run_dir / "shape.json").write_bytes(shape)
        # a writer: recovery cuts the torn tail (without fsync, to keep the test quick)
        log = EventLog.open(run_dir, options=LogOptions(fsync="never"))
        whole = sum(1 for e in ends if e <= cut)
        assert len(log) == 2 * whole, cut
        assert np.array_equal(strip_seq(log.read_events()), expected[: 2 * whole])
        assert (log.recovery != []) == (cut not in [FILE_HEADER.size, *ends])
        if cut % 64 == 0 or cut in ends:  # appends resume after the cut
            assert log.append(expected[2 * whole : 2 * whole + 1]).first == 2 * whole + 1
        del log  # dropped unclosed, as by a crash (its lock is released, its end not recorded)


def test_a_cut_sealed_file_is_a_clear_error(tmp_path: Path) -> None:
    run_dir = small_log(tmp_path / "src")
    with EventLog.open(run_dir) as log:
        (sealed,) = log.seal()
    data = sealed.read_bytes()
    for cut in range(0, len(data), 7):
        sealed.chmod(0o644)
        sealed.write_bytes(data[:cut])
        with pytest.raises(LogCorruptionError, match="shape record says") as info:
            EventLog.open(run_dir, read_only=True)
        assert info.value.path == sealed


def _detected_or_prefix(run_dir: Path, expected: np.ndarray) -> str:
    """Opens a damaged log: "error" (LogCorruptionError) or "torn" (cut back to a strict
    prefix of what was written). Fails on anything else: undetected damage or wrong data."""
    try:
        log = EventLog.open(run_dir, read_only=True)
    except LogCorruptionError:
        return "error"
    with log:
        back = strip_seq(log.read_events())
        assert log.recovery, "damage went undetected"
        assert len(back) < len(expected)
        assert np.array_equal(back, expected[: len(back)]), "wrong data returned"
        return "torn"


def test_every_single_byte_flip_in_the_tail_is_detected(tmp_path: Path) -> None:
    run_dir = small_log(tmp_path, frames=2)
    segment = segment_of(run_dir)
    data = segment.read_bytes()
    ends = frame_ends(data)
    expected = make_events(4)
    outcomes = {}
    for at in range(len(data)):
        flipped = bytearray(data)
        flipped[at] ^= 0xFF
        segment.write_bytes(bytes(flipped))
        outcomes[at] = _detected_or_prefix(run_dir, expected)
    segment.write_bytes(data)
    # damage before the last frame is an error, never a silent cut
    assert all(outcomes[at] == "error" for at in range(ends[-2]))
    assert all(outcomes[at] == "torn" for at in range(ends[-2], len(data)))


def test_every_single_byte_flip_in_a_sealed_file_is_detected(tmp_path: Path) -> None:
    run_dir = small_log(tmp_path)
    with EventLog.open(run_dir) as log:
        (sealed,) = log.seal()
    data = sealed.read_bytes()
    sealed.chmod(0o644)
    for at in range(len(data)):
        flipped = bytearray(data)
        flipped[at] ^= 0x01
        sealed.write_bytes(bytes(flipped))
        with pytest.raises(LogCorruptionError, match=r"damaged at byte offset 0: sealed file"):
            EventLog.open(run_dir, read_only=True)
    sealed.write_bytes(data)
    with EventLog.open(run_dir, read_only=True) as log:
        assert np.array_equal(strip_seq(log.read_events()), make_events(6))


def test_damage_inside_the_tail_names_file_and_offset_and_quarantines(tmp_path: Path) -> None:
    run_dir = small_log(tmp_path, frames=3)
    segment = segment_of(run_dir)
    data = bytearray(segment.read_bytes())
    ends = frame_ends(bytes(data))
    at = ends[0] + FRAME_HEADER.size + 10  # inside the second frame's payload
    data[at] ^= 0x40
    segment.write_bytes(bytes(data))
    with pytest.raises(LogCorruptionError) as info:
        EventLog.open(run_dir, read_only=True)  # a reader reports and changes nothing
    assert info.value.path == segment
    assert info.value.offset == ends[0]
    assert f"{segment}: damaged at byte offset {ends[0]}" in str(info.value)
    assert segment.exists()
    with pytest.raises(LogCorruptionError, match="moved to quarantine/"):
        EventLog.open(run_dir)
    assert not segment.exists()
    moved = run_dir / "quarantine" / f"{segment.name}.at-{ends[0]}"
    assert moved.exists()
    # the log stays refused until someone looks at the quarantined segment
    with pytest.raises(LogCorruptionError, match="quarantined") as again:
        EventLog.open(run_dir)
    assert again.value.path == moved
    assert again.value.offset == ends[0]


def test_damage_in_a_closed_segment_is_an_error_even_at_its_end(tmp_path: Path) -> None:
    with EventLog.create(
        tmp_path, "r", options=LogOptions(group_events=2, segment_events=4, auto_seal=False)
    ) as log:
        for f in range(4):
            log.append(make_events(2, start=2 * f))
        run_dir = log.path
    first, second = sorted((run_dir / "tail").iterdir())
    data = first.read_bytes()
    first.write_bytes(data[:-3])  # the end of a closed segment: not a torn tail
    with pytest.raises(LogCorruptionError, match="damage inside a closed segment"):
        EventLog.open(run_dir, read_only=True)
    first.write_bytes(data)
    second.unlink()  # the last segment gone: not a shorter log, an error naming it
    with pytest.raises(LogCorruptionError, match="segment is missing") as info:
        EventLog.open(run_dir, read_only=True)
    assert info.value.path == second


def test_a_gap_between_files_is_an_error(tmp_path: Path) -> None:
    with EventLog.create(
        tmp_path, "r", options=LogOptions(group_events=2, segment_events=2)
    ) as log:
        for f in range(3):
            log.append(make_events(2, start=2 * f))
        log.seal()
        run_dir = log.path
    files = sorted(run_dir.glob("events-*.parquet"))
    assert len(files) == 3
    files[1].unlink()
    with pytest.raises(LogCorruptionError, match="sealed file is missing"):
        EventLog.open(run_dir, read_only=True)


def test_leftovers_of_an_interrupted_seal_are_cleaned_up(tmp_path: Path) -> None:
    run_dir = small_log(tmp_path)
    segment = segment_of(run_dir)
    saved = segment.read_bytes()
    with EventLog.open(run_dir) as log:
        log.seal()
    # a crash after the rename but before the segment was removed; and a stray temp file
    segment.write_bytes(saved)
    (run_dir / "events-junk.parquet.tmp").write_bytes(b"half")
    with EventLog.open(run_dir) as log:
        assert len(log) == 6
        assert not segment.exists()
        assert not list(run_dir.glob("*.tmp"))
        assert np.array_equal(strip_seq(log.read_events()), make_events(6))
