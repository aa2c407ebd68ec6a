"""Reading bars: 1M one-minute bars from CSV (run by `make bench`; disabled in the test run).

Two files repeat real excerpts with fresh minute timestamps: backtrader's minute bars (clean
decimals) and FTX BTC-PERP (whose volumes carry float artifacts such as 218102.59507500002,
so one column is parsed a second time at 18 decimals and rounded). The comparison is the
plain-Python way (``csv`` + ``Decimal`` per field), measured on 100k rows.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from admf import SCALE
from admf.data import read_bars

DATA = Path(__file__).resolve().parents[1] / "data" / "market"
BACKTRADER = DATA / "backtrader__2006-01-02-volume-min-001_head300.txt"
FTX = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "market"
    / "nautilus__ftx_btc-perp-20211231-20220201_1m_head300.csv"
)
ROWS = 1_000_000
PY_ROWS = 100_000


def _write(path: Path, n: int) -> Path:
    rows = [line.split(",", 1)[1] for line in FTX.read_text().splitlines()[1:]]
    stamps = np.datetime_as_string(
        np.datetime64("2020-01-01T00:00") + np.arange(n).astype("timedelta64[m]"), unit="us"
    )
    with path.open("w") as f:
        f.write("timestamp,open,high,low,close,volume\n")
        f.writelines(
            f"{stamp.replace('T', ' ')},{rows[i % len(rows)]}\n" for i, stamp in enumerate(stamps)
        )
    return path


def _write_backtrader(path: Path, n: int) -> Path:
    rows = [line.split(",", 2)[2] for line in BACKTRADER.read_text().splitlines()[1:]]
    stamps = np.datetime_as_string(
        np.datetime64("2006-01-02T09:01") + np.arange(n).astype("timedelta64[m]"), unit="s"
    )
    with path.open("w") as f:
        f.write("Date,Open,High,Low,Close,Volume,OpenInterest\n")
        f.writelines(
            f"{stamp[:10]},{stamp[11:]},{rows[i % len(rows)]}\n" for i, stamp in enumerate(stamps)
        )
    return path


@pytest.fixture(scope="module")
def million_backtrader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_backtrader(tmp_path_factory.mktemp("bars") / "bt_1m.txt", ROWS)


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("bars") / "bars_1m.csv", ROWS)


@pytest.fixture(scope="module")
def hundred_k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("bars") / "bars_100k.csv", PY_ROWS)


def test_read_bars_1m_backtrader_csv(benchmark: Any, million_backtrader: Path) -> None:
    benchmark.extra_info["elements"] = ROWS
    events = benchmark.pedantic(read_bars, args=(million_backtrader,), rounds=5, warmup_rounds=1)
    assert len(events) == ROWS


def test_read_bars_1m_ftx_csv(benchmark: Any, million: Path) -> None:
    benchmark.extra_info["elements"] = ROWS
    events = benchmark.pedantic(read_bars, args=(million,), rounds=5, warmup_rounds=1)
    assert len(events) == ROWS


def _python_reader(path: Path) -> list[tuple[int, ...]]:
    out = []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            out.append(tuple(round(Decimal(x) * SCALE) for x in row[1:]))
    return out


def test_read_bars_python_csv_decimal(benchmark: Any, hundred_k: Path) -> None:
    benchmark.extra_info["elements"] = PY_ROWS
    rows = benchmark.pedantic(_python_reader, args=(hundred_k,), rounds=3)
    assert len(rows) == PY_ROWS
