"""EventLog: appends, seqs, idempotence, payloads, group commit, sealing, reopening, the
one-writer lock, the manifest and schema evolution."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import admf
from admf import EVENT_SCHEMA, Event, EventLog, Flag, Kind, empty_events, to_record_batch
from admf.errors import AdmfError
from admf.log import LogLockedError, LogOptions, SeqRange


def make_events(n: int, start: int = 0, kind: Kind = Kind.TRADE) -> np.ndarray:
    """Deterministic events whose content follows from their index."""
    ev = empty_events(n)
    i = np.arange(start, start + n, dtype=np.int64)
    ev["ts"] = 1_700_000_000_000_000_000 + i * 1000
    ev["kind"] = kind
    ev["instrument"] = (i % 7).astype(np.uint32)
    ev["price"] = 100_000_000_000 + i * 1_000_000
    ev["qty"] = (i % 13 + 1) * 1_000_000_000
    ev["order_id"] = i
    ev["side"] = (i % 2 + 1).astype(np.uint8)
    return ev


def events_of(table: pa.Table) -> np.ndarray:
    return admf.from_arrow(table.select(list(admf.events.FIELD_NAMES)))


def strip_seq(ev: np.ndarray) -> np.ndarray:
    out = ev.copy()
    out["seq"] = 0
    return out


def test_append_assigns_contiguous_seqs_and_reads_back(tmp_path: Path) -> None:
    ev = make_events(25_000)
    with EventLog.create(tmp_path, "r1", options=LogOptions(group_events=10_000)) as log:
        assert log.append(ev[:10]) == SeqRange(1, 10)
        assert log.append(ev[10:]) == SeqRange(11, 25_000)
        back = log.read_events()
        assert np.array_equal(back["seq"], np.arange(1, 25_001, dtype=np.uint64))
        assert np.array_equal(strip_seq(back), ev)
        assert len(log) == 25_000
        assert log.read(100, 103).column("seq").to_pylist() == [100, 101, 102]


def test_append_accepts_event_objects_and_arrow(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "r1") as log:
        one = Event(Kind.SIGNAL, 5, instrument=3, price=7)
        assert log.append(one) == SeqRange(1, 1)
        assert log.append([one, one.replace(price=8)]) == SeqRange(2, 3)
        assert log.append(to_record_batch(make_events(4))).count == 4
        table = pa.Table.from_batches([to_record_batch(make_events(3))])
        assert log.append(table) == SeqRange(8, 10)
        back = log.read_events()
        assert back["price"][:3].tolist() == [7, 7, 8]
        assert back["instrument"][0] == 3


def test_bad_input_names_what_was_expected(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "r1") as log:
        with pytest.raises(TypeError, match=r"expected admf\.Event objects, item 0 is a int"):
            log.append([1, 2, 3])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="EVENT_DTYPE"):
            log.append(np.zeros(3))
        with pytest.raises(TypeError, match="missing"):
            log.append(pa.record_batch({"seq": pa.array([1], pa.uint64())}))
        with pytest.raises(ValueError, match="2 payloads given for 3 events"):
            log.append(make_events(3), payloads=[b"a", b"b"])
        assert len(log) == 0


def test_sequenced_events_continue_the_log_and_duplicates_are_stored_once(
    tmp_path: Path,
) -> None:
    ev = make_events(100)
    ev["seq"] = np.arange(1, 101, dtype=np.uint64)
    with EventLog.create(tmp_path, "r1") as log:
        assert log.append(ev[:60]) == SeqRange(1, 60)
        # a retry of an acknowledged append (and more): the known part is not stored again
        assert log.append(ev[40:]) == SeqRange(41, 100)
        assert len(log) == 100
        assert log.append(ev[:10]) == SeqRange(1, 10)
        assert len(log) == 100
        assert np.array_equal(log.read_events(), ev)
        # a gap is refused
        gap = make_events(1)
        gap["seq"] = 150
        with pytest.raises(AdmfError, match="next seq is 101"):
            log.append(gap)
        # the same seq with different content is refused
        other = ev[5:6].copy()
        other["price"] += 1
        with pytest.raises(AdmfError, match="different content"):
            log.append(other)
        # seqs must be all 0 or contiguous
        mixed = make_events(3)
        mixed["seq"] = [101, 0, 103]
        with pytest.raises(AdmfError, match="contiguous"):
            log.append(mixed)
        assert len(log) == 100


def test_duplicates_are_detected_in_sealed_files_and_after_reopen(tmp_path: Path) -> None:
    ev = make_events(50)
    ev["seq"] = np.arange(1, 51, dtype=np.uint64)
    with EventLog.create(tmp_path, "r1") as log:
        log.append(ev[:30])
        log.seal()
        log.append(ev[30:])
        run_dir = log.path
    with EventLog.open(run_dir) as log:
        assert log.append(ev) == SeqRange(1, 50)
        assert len(log) == 50
        assert np.array_equal(log.read_events(), ev)


def test_payloads_are_stored_with_their_events(tmp_path: Path) -> None:
    ev = make_events(4, kind=Kind.CUSTOM)
    with EventLog.create(tmp_path, "r1") as log:
        log.append(ev, payloads=[b"\x00\xffraw", "text", None, {"b": 2, "a": [1, 2]}])
        log.append(Event(Kind.SIGNAL, 1), payloads={"signal": "buy"})
        assert log.payload(1) == b"\x00\xffraw"
        assert log.payload(2) == b"text"
        assert log.payload(3) is None
        assert json.loads(log.payload(4) or b"") == {"a": [1, 2], "b": 2}
        assert json.loads(log.payload(5) or b"") == {"signal": "buy"}
        flags = log.read_events()["flags"]
        assert [bool(f & Flag.HAS_PAYLOAD) for f in flags] == [True, True, False, True, True]
        log.seal()
        assert log.payload(1) == b"\x00\xffraw"
        with pytest.raises(AdmfError, match="no event with seq 9"):
            log.payload(9)


def test_async_appends_are_grouped_and_resolved_when_durable(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "r1", options=LogOptions(group_events=1000, group_ms=20)) as log:
        futures = [log.append_async(make_events(10, start=10 * i)) for i in range(50)]
        ranges = [f.result(timeout=10) for f in futures]
        assert ranges == [SeqRange(10 * i + 1, 10 * i + 10) for i in range(50)]
        # 500 events within 20 ms went out as few frames, not 50
        assert sum(len(s.batches) for s in log._tail) < 10
        assert np.array_equal(strip_seq(log.read_events()), make_events(500))


def test_concurrent_appenders_get_disjoint_contiguous_ranges(tmp_path: Path) -> None:
    results: list[SeqRange] = []
    lock = threading.Lock()
    with EventLog.create(tmp_path, "r1", options=LogOptions(group_events=64, group_ms=1)) as log:

        def worker() -> None:
            for _ in range(40):
                r = log.append_async(make_events(3)).result(timeout=10)
                with lock:
                    results.append(r)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seqs = sorted(s for r in results for s in range(r.first, r.last + 1))
        assert seqs == list(range(1, 481))
        assert len(log) == 480


@pytest.mark.parametrize("policy", ["always", "group", "never"])
def test_fsync_policies_round_trip(tmp_path: Path, policy: str) -> None:
    ev = make_events(3000)
    with EventLog.create(
        tmp_path, "r1", options=LogOptions(fsync=policy, group_events=1000)
    ) as log:  # type: ignore[arg-type]
        for i in range(0, 3000, 500):
            log.append(ev[i : i + 500])
        run_dir = log.path
    with EventLog.open(run_dir, read_only=True) as log:
        assert np.array_equal(strip_seq(log.read_events()), ev)


def test_invalid_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AdmfError, match="fsync must be one of"):
        EventLog.create(tmp_path, "r1", options=LogOptions(fsync="sometimes"))  # type: ignore[arg-type]
    with pytest.raises(AdmfError, match="group_events must be an integer >= 1"):
        EventLog.create(tmp_path, "r1", options=LogOptions(group_events=0))
    with pytest.raises(AdmfError, match="invalid run id"):
        EventLog.create(tmp_path, "../escape")
    assert not list(tmp_path.iterdir())  # nothing was created


def test_rollover_seals_full_segments_into_parquet(tmp_path: Path) -> None:
    ev = make_events(10_000)
    with EventLog.create(
        tmp_path, "r1", options=LogOptions(group_events=1000, segment_events=3000)
    ) as log:
        for i in range(0, 10_000, 1000):
            log.append(ev[i : i + 1000])
        log.seal()
        files = log.sealed_files
        assert len(files) == 4
        assert not list((log.path / "tail").iterdir())
        meta = pq.ParquetFile(files[0]).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert np.array_equal(strip_seq(log.read_events()), ev)
        # sealed files are read-only on disk
        assert not files[0].stat().st_mode & 0o222
        log.append(ev[:5])
        assert len(log) == 10_005


def test_reopen_continues_the_log(tmp_path: Path) -> None:
    ev = make_events(2000)
    with EventLog.create(
        tmp_path, "r1", options=LogOptions(segment_events=700, group_events=100)
    ) as log:
        log.append(ev[:1500])
        run_dir = log.path
    with EventLog.open(run_dir, options=LogOptions(segment_events=700, group_events=100)) as log:
        assert log.recovery == []
        assert log.append(ev[1500:]) == SeqRange(1501, 2000)
    with EventLog.open(run_dir, read_only=True) as log:
        assert np.array_equal(strip_seq(log.read_events()), ev)
        assert [b.num_rows for b in log.iter_batches(990, 1010)] != []
        assert sum(b.num_rows for b in log.iter_batches(990, 1010)) == 20


def test_a_second_writer_in_another_process_gets_a_clear_error(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "r1") as log:
        log.append(make_events(3))
        code = (
            "import sys\n"
            "from admf import EventLog\n"
            "from admf.log import LogLockedError\n"
            "try:\n"
            f"    EventLog.open({str(log.path)!r})\n"
            "except LogLockedError as e:\n"
            "    print(e)\n"
            "    sys.exit(3)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 3, proc.stderr
        assert "already open for writing" in proc.stdout
        assert "read_only=True" in proc.stdout
        # in the same process too
        with pytest.raises(LogLockedError):
            EventLog.open(log.path)
        # a reader is fine, and sees what the writer acknowledged
        with EventLog.open(log.path, read_only=True) as reader:
            assert len(reader) == 3
            with pytest.raises(AdmfError, match="read-only"):
                reader.append(make_events(1))
    with EventLog.open(tmp_path / "run=r1") as log:  # released on close
        assert len(log) == 3


def test_manifest_records_the_run(tmp_path: Path) -> None:
    config = {"strategy": "sma", "fast": 10, "slow": 30}
    with EventLog.create(tmp_path, "r1", config=config, seed=42) as log:
        m = log.manifest
    raw = json.loads((tmp_path / "run=r1" / "manifest.json").read_text())
    assert raw["run_id"] == "r1" == m.run_id
    assert raw["config"] == config
    assert raw["seed"] == 42
    assert len(raw["config_hash"]) == 64
    assert {"python", "numpy", "pyarrow", "duckdb", "admf"} <= set(raw["libraries"])
    assert raw["engine_version"] == admf.__version__
    with pytest.raises(AdmfError, match="already exists"):
        EventLog.create(tmp_path, "r1")
    with pytest.raises(AdmfError, match="JSON-serializable"):
        EventLog.create(tmp_path, "r2", config={"x": object()})
    generated = EventLog.create(tmp_path, config={})
    assert generated.path.name == f"run={generated.run_id}"
    generated.close()


def test_schema_can_grow_and_old_segments_stay_readable(tmp_path: Path) -> None:
    old = make_events(5)
    with EventLog.create(tmp_path, "r1") as log:
        log.append(old)
        log.seal()  # an old sealed file without the new column
        log.append(old)  # an old frame in the tail
        grown = to_record_batch(make_events(3, kind=Kind.CUSTOM))
        grown = grown.append_column("venue", pa.array(["XNAS", "XNYS", None]))
        log.append(grown)
        # a kind this version does not know (a later version added it)
        unknown = make_events(2)
        unknown["kind"] = 99
        log.append(unknown)
        clash = to_record_batch(make_events(1)).append_column("venue", pa.array([1]))
        with pytest.raises(AdmfError, match="column 'venue' is string in this log"):
            log.append(clash)
        table = log.read()
        assert table.column("venue").to_pylist() == [None] * 10 + ["XNAS", "XNYS", None, None, None]
        assert log.read_events()["kind"].tolist()[-2:] == [99, 99]
        run_dir = log.path
    with EventLog.open(run_dir) as log:
        log.seal()
        assert log.read().column("venue").to_pylist()[10:12] == ["XNAS", "XNYS"]
        result = log.sql(
            "SELECT kind_name, count(*) AS n, count(venue) AS v FROM events "
            "GROUP BY ALL ORDER BY kind_name"
        ).to_pylist()
        assert result == [
            {"kind_name": "CUSTOM", "n": 3, "v": 2},
            {"kind_name": "KIND_99", "n": 2, "v": 0},
            {"kind_name": "TRADE", "n": 10, "v": 0},
        ]


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    log = EventLog.create(tmp_path, "r1")
    log.close()
    with pytest.raises(AdmfError, match="closed"):
        log.append(make_events(1))
    log.close()  # idempotent


def test_event_log_is_exported() -> None:
    assert admf.EventLog is EventLog
    assert EVENT_SCHEMA.names[0] == "seq"


def test_sealed_files_carry_parquet_page_checksums(tmp_path: Path) -> None:
    with EventLog.create(tmp_path, "r1") as log:
        log.append(make_events(5000))
        (sealed,) = log.seal()
    meta = pq.ParquetFile(sealed).metadata.row_group(0).column(3)  # price: plain, zstd
    data = bytearray(sealed.read_bytes())
    data[meta.data_page_offset + meta.total_compressed_size - 5] ^= 0x10
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(bytes(data))
    pq.read_table(damaged, page_checksum_verification=False)  # no check: no error
    with pytest.raises(OSError, match="CRC"):
        pq.read_table(damaged, page_checksum_verification=True)


def test_readers_see_a_consistent_prefix_while_the_writer_seals(tmp_path: Path) -> None:
    stop = threading.Event()
    with EventLog.create(
        tmp_path, "r1", options=LogOptions(group_events=50, segment_events=200)
    ) as log:
        log.append(make_events(10))

        def write() -> None:
            start = 10
            while not stop.is_set() and start < 20_000:
                log.append(make_events(50, start=start))
                start += 50

        writer = threading.Thread(target=write)
        writer.start()
        try:
            seen = 0
            for _ in range(30):
                with EventLog.open(log.path, read_only=True) as reader:
                    n = len(reader)
                    assert n >= seen
                    seqs = reader.read().column("seq").to_numpy()
                    assert np.array_equal(seqs, np.arange(1, n + 1, dtype=np.uint64))
                    seen = n
        finally:
            stop.set()
            writer.join()
        assert seen > 10


def test_segments_roll_over_by_size_too(tmp_path: Path) -> None:
    ev = make_events(4000)
    with EventLog.create(
        tmp_path, "r1", options=LogOptions(group_events=500, segment_bytes=100_000, auto_seal=False)
    ) as log:
        for i in range(0, 4000, 500):
            log.append(ev[i : i + 500])
        segments = sorted((log.path / "tail").iterdir())
        assert len(segments) == 4  # a frame of 500 events is ~35 kB: two fit in 100 kB
        assert all(p.stat().st_size <= 100_000 for p in segments)
        assert np.array_equal(strip_seq(log.read_events()), ev)
