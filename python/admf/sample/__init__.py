"""Real market data bundled with admf for the demo.

- ``btcusdt_trades.parquet``: 2,001 Binance BTCUSDT trades of 2021-01-08, from
  NautilusTrader's test data (nautechsystems/nautilus_trader ``tests/test_data/``, LGPL-3.0).
"""
