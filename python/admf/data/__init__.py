"""Readers of real market data into admf events: ``lobster`` (NASDAQ order-book files from
LOBSTER) and ``databento`` (Databento DBN market-by-order files)."""

from admf.data import databento, lobster

__all__ = ["databento", "lobster"]
