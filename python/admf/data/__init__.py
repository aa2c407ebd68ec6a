"""Readers of real market data into admf events: ``bars`` (bar, quote and trade files, CSV and
Parquet), ``lobster`` (NASDAQ order-book files from LOBSTER) and ``databento`` (Databento DBN
market-by-order files)."""

from admf.data import databento, lobster
from admf.data.bars import (
    bar_open_ts,
    detect_format,
    load_market_data,
    read_bars,
    read_market_data,
    read_quotes,
    read_trades,
)

__all__ = [
    "bar_open_ts",
    "databento",
    "detect_format",
    "load_market_data",
    "lobster",
    "read_bars",
    "read_market_data",
    "read_quotes",
    "read_trades",
]
