"""admf: a pluggable event-sourcing trading engine with a Rust core.

The log is the truth; the core is deterministic; asyncio stays at the edges; Python pays only
for what it touches; nothing acknowledged is lost (see DESIGN.md).
"""

from importlib.metadata import PackageNotFoundError, version

from admf._core import EndOfStream, Event, QueueClosed, QueueFull
from admf.book import BookError, OrderBook, SimVenue, SubmitResult
from admf.events import (
    EVENT_DTYPE,
    EVENT_SCHEMA,
    EVENT_SIZE,
    SCALE,
    Flag,
    Kind,
    Side,
    empty_events,
    from_arrow,
    from_fixed,
    to_fixed,
    to_record_batch,
)
from admf.log import EventLog
from admf.queue import EventQueue
from admf.strategy import Component, Strategy, StrategyConfig

try:
    __version__ = version("admf")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "EVENT_DTYPE",
    "EVENT_SCHEMA",
    "EVENT_SIZE",
    "SCALE",
    "BookError",
    "Component",
    "EndOfStream",
    "Event",
    "EventLog",
    "EventQueue",
    "Flag",
    "Kind",
    "OrderBook",
    "QueueClosed",
    "QueueFull",
    "Side",
    "SimVenue",
    "Strategy",
    "StrategyConfig",
    "SubmitResult",
    "__version__",
    "empty_events",
    "from_arrow",
    "from_fixed",
    "to_fixed",
    "to_record_batch",
]
