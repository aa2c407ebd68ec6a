"""Market data readers: files into ``EVENT_DTYPE`` arrays (see ``admf.data.bars``)."""

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
    "detect_format",
    "load_market_data",
    "read_bars",
    "read_market_data",
    "read_quotes",
    "read_trades",
]
