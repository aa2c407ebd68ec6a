"""Every reader of ``admf.data`` reads a ``DataFile`` (bytes already in memory) exactly as it
reads the same file from disk, errors included."""

from __future__ import annotations

from pathlib import Path

import pytest

from admf.data import DataFile, load_source
from admf.data.source import companions
from admf.errors import AdmfError

DATA = Path(__file__).resolve().parents[1] / "data"
FILES = [
    DATA / "orcl-1995-daily-100.csv",
    DATA / "usdjpy-quotes-100.csv",
    DATA / "market" / "backtrader__2006-01-02-volume-min-001_head300.txt",
    DATA / "market" / "backtrader__ticksample.csv",
    DATA / "market" / "nautilus__quote_tick_data_head200.csv",
    DATA / "market" / "nautilus__binance_btcusdt-quotes.parquet",
    DATA / "market" / "nautilus__binance_btcusdt-trades.parquet",
    DATA / "market" / "databento__esh4-mbo-head400.dbn.zst",
    DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv",
]


def _in_memory(path: Path) -> DataFile:
    siblings = {p.name: p.read_bytes() for p in companions(path)}
    return DataFile(path, path.read_bytes(), siblings)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_file_in_memory_reads_as_on_disk(path: Path) -> None:
    on_disk = load_source(path, 3)
    in_memory = load_source(_in_memory(path), 3)
    assert len(on_disk.events) > 0
    assert in_memory.events.tobytes() == on_disk.events.tobytes()
    assert (in_memory.path, in_memory.name, in_memory.kind, in_memory.tick) == (
        on_disk.path,
        on_disk.name,
        on_disk.kind,
        on_disk.tick,
    )


def test_errors_name_the_file_and_line_as_on_disk(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    lines = (DATA / "orcl-1995-daily-100.csv").read_text().splitlines()
    lines[5] = lines[5].replace(",", ",x", 1)
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(AdmfError) as on_disk:
        load_source(bad, 1)
    with pytest.raises(AdmfError) as in_memory:
        load_source(DataFile(bad, bad.read_bytes()), 1)
    assert str(in_memory.value) == str(on_disk.value)
    assert f"{bad}:6" in str(on_disk.value)


def test_a_lobster_file_without_its_orderbook_in_memory_looks_on_disk(tmp_path: Path) -> None:
    message = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
    alone = tmp_path / message.name
    with pytest.raises(AdmfError, match=r"orderbook file .* is not beside it"):
        load_source(DataFile(alone, message.read_bytes()), 1)
