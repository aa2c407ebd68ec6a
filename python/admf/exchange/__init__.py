"""The paper exchange: an Alpaca-compatible venue server over replayed market data.

``ExchangeServer(ExchangeConfig(data=(...)))`` is an async context manager that serves the
trading REST API, the trade_updates stream, the market-data stream and historical bars on
127.0.0.1 (an ephemeral port by default); ``admf exchange serve`` runs it from the shell.
Parts: ``engine`` (accounts, orders, the replay), ``matching`` (the Rust book venue and the
bar rule), ``market`` (symbols, the merged timeline, the calendar), ``server`` (the service,
streams, admin), ``rest`` (the trading REST handlers), ``history`` (historical bars),
``marketdata`` (the market-data stream), ``streams`` (bounded client queues), ``faults``,
``ratelimit``, ``journal`` (the exchange's event log), ``accounts``, ``orders``, ``wire``
(JSON shapes and error bodies), ``config``.
"""

from admf.exchange.accounts import Credentials
from admf.exchange.config import ExchangeConfig, ExchangeConfigError
from admf.exchange.faults import Faults
from admf.exchange.server import ExchangeServer

__all__ = ["Credentials", "ExchangeConfig", "ExchangeConfigError", "ExchangeServer", "Faults"]
