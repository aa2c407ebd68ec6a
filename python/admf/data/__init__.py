"""Readers of real market data into admf events: ``bars`` (bar, quote and trade files, CSV and
Parquet), ``lobster`` (NASDAQ order-book files from LOBSTER) and ``databento`` (Databento DBN
market-by-order files); ``checks`` (what every reader accepts, and how it refuses) and
``source`` (one input file of a run, read by the reader its name calls for); ``file`` (a file
already in memory, which every reader takes in place of a path)."""

from admf.data import databento, lobster
from admf.data.bars import (
    ColumnMap,
    bar_open_ts,
    detect_format,
    load_market_data,
    read_bars,
    read_market_data,
    read_quotes,
    read_trades,
)
from admf.data.file import DataFile
from admf.data.source import ReadOptions, Source, load_source

__all__ = [
    "ColumnMap",
    "DataFile",
    "ReadOptions",
    "Source",
    "bar_open_ts",
    "databento",
    "detect_format",
    "load_market_data",
    "load_source",
    "lobster",
    "read_bars",
    "read_market_data",
    "read_quotes",
    "read_trades",
]
