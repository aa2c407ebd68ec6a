"""The ``replay`` data adapter: data files read with aiofiles and parsed by the backtest's
readers, played at a multiple of real time with both timestamps kept."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiofiles
import numpy as np
import pytest

from admf.data import load_source
from admf.errors import AdmfError
from admf.events import EventArray, Kind
from admf.live import replay_data
from admf.live.adapter import AdapterContext
from admf.live.inbox import Inbox

from .conftest import DATA, ORCL

USDJPY = DATA / "usdjpy-quotes-100.csv"
AAPL = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"


def _drain(inbox: Inbox) -> EventArray:
    inbox.close()
    batches = []
    while (got := inbox.feed()) is not None:
        batches.append(got[0])
    return np.concatenate(batches)


def test_files_are_read_with_aiofiles_and_parsed_as_a_backtest_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened = _spy_on_aiofiles(monkeypatch)
    monkeypatch.setattr(replay_data, "_CHUNK", 4096)  # many reads per file
    paths = [ORCL, str(USDJPY), str(AAPL)]
    events = asyncio.run(replay_data.load_files(paths, 3))
    assert sorted(opened) == sorted(
        [Path(ORCL).name, USDJPY.name, AAPL.name, AAPL.name.replace("_message_", "_orderbook_")]
    )
    from_disk = [load_source(p, i).events for i, p in enumerate(paths, 1)]
    assert len(events) == sum(len(e) for e in from_disk)
    for i, expected in enumerate(from_disk, 1):
        mine = events[events["instrument"] == i]
        assert mine.tobytes() == expected.tobytes()
    assert (np.diff(events["ts"]) >= 0).all()


def test_a_missing_file_is_a_clear_error() -> None:
    with pytest.raises(AdmfError, match=r"replay adapter: no data file at .*nowhere\.csv"):
        asyncio.run(replay_data.load_files([str(DATA / "nowhere.csv")], 1))


def test_quotes_play_at_a_multiple_of_real_time_with_both_timestamps() -> None:
    inbox = Inbox(4096)
    speed = 1_000.0  # the 100 quotes span 539 s: about 0.54 s
    context = AdapterContext(inbox, ["USDJPY"], {"data": [str(USDJPY)], "speed": speed})
    adapter = replay_data.ReplayData(context)

    async def play() -> float:
        await adapter.connect()
        start = time.monotonic()
        await adapter.run()
        return time.monotonic() - start

    elapsed = asyncio.run(play())
    pushed = _drain(inbox)
    recorded = load_source(USDJPY, 1).events
    span = (int(recorded["ts"][-1]) - int(recorded["ts"][0])) / 1e9 / speed
    assert span * 0.95 <= elapsed <= span + 1.0
    assert adapter.played == len(pushed) == len(recorded)
    assert (pushed["kind"] == Kind.QUOTE).all()
    # The venue's time is kept in the payload slot, the local receive time is the stamp.
    assert pushed["payload"].tolist() == recorded["ts"].tolist()
    for field in ("price", "aux", "qty", "order_id"):
        assert pushed[field].tolist() == recorded[field].tolist()
    local = pushed["ts"]
    assert (np.diff(local) >= 0).all()
    # Paced: the local gaps follow the recorded ones, divided by the speed.
    played = (int(local[-1]) - int(local[0])) / 1e9
    assert span * 0.95 <= played <= span + 1.0


def test_the_event_loop_runs_while_a_large_file_is_read(tmp_path: Path) -> None:
    big = tmp_path / "usdjpy-big.csv"
    rows = 200_000
    ts = np.datetime64("2013-01-01T22:00:00", "ms") + np.arange(rows) * 7
    bids = 86_000 + np.arange(rows) % 700
    lines = [
        f"{t}+00:00,{b / 1000:.3f},{(b + 70) / 1000:.3f}" for t, b in zip(ts, bids, strict=True)
    ]
    big.write_text("timestamp,bid,ask\n" + "\n".join(lines) + "\n")
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.001)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def load() -> EventArray:
        task = asyncio.create_task(ticker())
        events = await replay_data.load_files([str(big)], 1)
        task.cancel()
        return events

    events = asyncio.run(load())
    assert len(events) == rows
    # The file is read in 1 MiB chunks and parsed in a worker thread: the loop kept running
    # (parsing it on the loop stalls it for the whole parse, several times this).
    assert len(gaps) >= 20
    assert max(gaps) < 0.25


def test_a_missing_file_fails_before_the_session_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from admf.cli import main

    code = main(
        ["live", "--strategy", "sma-cross", "--data-adapter", "replay", "--data",
         str(tmp_path / "nowhere.csv"), "--log", str(tmp_path / "runs")]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "replay adapter: no data file at" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live session's log rewritten as one sealed file and a tail segment of two appends,
    so a replay reads both kinds of file."""
    from admf.cli import main
    from admf.log import EventLog
    from admf.log.payload import PAYLOAD_COLUMN

    root = tmp_path_factory.mktemp("recorded")
    assert main(
        ["live", "--strategy", "tests.live.strategies:Flip", "--data-adapter", "replay",
         "--data", ORCL, "--speed", "0", "--log", str(root / "live")]
    ) == 0  # fmt: skip
    (live,) = (root / "live").glob("run=*")
    with EventLog.open(live, read_only=True) as log:
        table = log.read()
        config = dict(log.manifest.config)
    payloads = [None if p is None else bytes(p) for p in table[PAYLOAD_COLUMN].to_pylist()]
    events = table.drop_columns([PAYLOAD_COLUMN])
    third = table.num_rows // 3
    with EventLog.create(root / "copy", config=config) as log:
        for a, b in ((0, third), (third, 2 * third), (2 * third, table.num_rows)):
            log.append(events.slice(a, b - a), payloads[a:b])
            if a == 0:
                log.seal()
        run = log.path
    return run


def _spy_on_aiofiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []
    real_open = aiofiles.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(replay_data.aiofiles, "open", spy)
    return opened


def test_a_log_is_read_with_aiofiles_and_verified_by_the_log(
    recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from admf.log import EventLog, recovery, seal
    from admf.replay import MARKET_KINDS, read_recording

    names = EventLog.files(recorded)
    assert [n.endswith(".parquet") for n in names] == [True, False]
    expected = read_recording(recorded).inputs
    expected = expected[np.isin(expected["kind"], [int(k) for k in MARKET_KINDS])]
    opened = _spy_on_aiofiles(monkeypatch)
    verified: list[bool] = []
    real_verify = seal.SealedFile.verify

    def verify(self: seal.SealedFile, data: bytes | None = None) -> None:
        verified.append(data is not None)
        real_verify(self, data)

    def no_disk(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the log read a segment from disk")

    monkeypatch.setattr(seal.SealedFile, "verify", verify)
    monkeypatch.setattr(recovery, "read_segment", no_disk)
    monkeypatch.setattr(replay_data, "_CHUNK", 4096)  # many reads per file
    events = asyncio.run(replay_data.load_log(str(recorded)))
    assert sorted(opened) == sorted(Path(n).name for n in names)
    assert verified == [True]  # the sealed file's hashes checked on the bytes read
    assert len(events) == len(expected) == 100
    for field in ("ts", "kind", "price", "qty", "aux", "order_id"):
        assert events[field].tolist() == expected[field].tolist()


def _flip_byte(path: Path, offset: int) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("which", ["sealed", "segment"])
def test_a_tampered_log_file_is_refused_as_admf_verify_reports_it(
    recorded: Path, tmp_path: Path, which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from admf.cli import main
    from admf.log import EventLog, LogCorruptionError

    run = tmp_path / recorded.name
    shutil.copytree(recorded, run)
    sealed, segment = (run / n for n in EventLog.files(run))
    # inside the sealed file's data; inside the segment's first frame (not its end)
    _flip_byte(sealed if which == "sealed" else segment, 100)
    assert main(["verify", str(run)]) != 0
    out = capsys.readouterr().out
    with pytest.raises(LogCorruptionError) as refused:
        asyncio.run(replay_data.load_log(str(run)))
    assert f"  - {refused.value}\n" in out
