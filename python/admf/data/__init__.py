"""Market data readers: files into ``EVENT_DTYPE`` arrays (see ``admf.data.bars``)."""

from admf.data.bars import (
    load_market_data,
    read_bars,
    read_market_data,
    read_quotes,
    read_trades,
)

__all__ = ["load_market_data", "read_bars", "read_market_data", "read_quotes", "read_trades"]
