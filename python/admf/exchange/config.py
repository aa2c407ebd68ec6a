"""The exchange's settings, checked before it starts (one frozen dataclass)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from admf.errors import AdmfError


class ExchangeConfigError(AdmfError, ValueError):
    """A setting of the exchange is invalid; the message names it and what it accepts."""


@dataclasses.dataclass(frozen=True)
class ExchangeConfig:
    """How one exchange runs.

    ``data`` are the market data files (bars, quotes, trades, LOBSTER, Databento MBO), each
    optionally ``SYMBOL=PATH``; the symbol defaults to the file name's first word. The
    replay clock plays them ``speed`` times real time, ``as_fast_as_possible``, or not at
    all until told (``paused``; the admin endpoint then steps it).
    """

    data: tuple[str, ...]
    speed: float = 1.0
    as_fast_as_possible: bool = False
    paused: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    accounts_file: str | None = None
    log_dir: str | None = None
    seed: int = 0
    initial_cash: float = 100_000.0
    fee_rate: float = 0.0
    """Fees as a fraction of a fill's notional (Alpaca paper charges none)."""
    partial_fill_rate: float = 0.0
    """On bars: the chance (seeded) that a fill is partial, as on Alpaca paper (0.1 there)."""
    bars_page_size: int = 10_000
    """The most bars one page of ``/v2/stocks/bars`` holds (Alpaca: 10,000)."""
    client_buffer: int = 1024
    """Frames queued per stream client; a client that falls this far behind is dropped."""
    max_symbols: int = 10_000
    """Per market data connection (error 405 beyond it)."""
    max_connections: int = 64
    """Market data connections per key (error 406 beyond it)."""
    rate_limit: int = 0
    """Requests per minute per account (Alpaca: 200); 0 turns limiting off."""
    auth_timeout: float = 10.0
    """Seconds a stream client has to authenticate (error 404 after it)."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ExchangeConfigError("data: the exchange needs at least one data file")
        if not (self.speed > 0):
            raise ExchangeConfigError(f"speed must be a positive number, got {self.speed}")
        if not 0 <= self.port < 65536:
            raise ExchangeConfigError(f"port must be in 0..65535, got {self.port}")
        if not 0.0 <= self.partial_fill_rate < 1.0:
            raise ExchangeConfigError(
                f"partial_fill_rate must be in [0, 1), got {self.partial_fill_rate}"
            )
        if self.fee_rate < 0:
            raise ExchangeConfigError(f"fee_rate must be >= 0, got {self.fee_rate}")
        if self.initial_cash < 0:
            raise ExchangeConfigError(f"initial_cash must be >= 0, got {self.initial_cash}")
        for name in ("bars_page_size", "client_buffer", "max_symbols", "max_connections"):
            if getattr(self, name) < 1:
                raise ExchangeConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rate_limit < 0:
            raise ExchangeConfigError(f"rate_limit must be >= 0 (0: off), got {self.rate_limit}")
        if self.auth_timeout <= 0:
            raise ExchangeConfigError(f"auth_timeout must be > 0, got {self.auth_timeout}")
        if self.accounts_file is not None and not Path(self.accounts_file).is_file():
            raise ExchangeConfigError(f"accounts: no file at {self.accounts_file}")

    def data_files(self) -> list[tuple[str | None, str]]:
        """``(symbol or None, path)`` per ``data`` entry."""
        out: list[tuple[str | None, str]] = []
        for item in self.data:
            symbol, sep, path = item.partition("=")
            if sep and symbol and not os.path.exists(item):
                out.append((symbol.strip().upper(), path))
            else:
                out.append((None, item))
        return out
