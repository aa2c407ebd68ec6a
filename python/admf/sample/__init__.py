"""Real market data bundled with admf for the demo.

- ``orcl-2005-2014.csv``: ORCL daily OHLCV bars 2005-2014 (2,518 rows), an excerpt of
  mementum/backtrader ``datas/orcl-1995-2014.txt`` (GPL-3.0; prices from Yahoo Finance).
- ``btcusdt_trades.parquet``: 2,001 Binance BTCUSDT trades of 2021-01-08, from
  NautilusTrader's test data (nautechsystems/nautilus_trader ``tests/test_data/``, LGPL-3.0).
"""
