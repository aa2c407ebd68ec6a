"""What a live session records about itself: ``CUSTOM`` input events whose ``order_id`` is a
`LiveCode` (the details, for people, in the payload).

Strategies' own ``CUSTOM`` events are outputs; these are inputs (flag ``INPUT``), so the two
never mix. The kernel side of the node (the live gate of the order path in Rust,
``rust/src/orders/gate.rs``, whose codes are ``_core.LIVE_GATE_CODES``) reads only the code,
never the payload, so a replay takes the same decisions from the same records.
"""

from __future__ import annotations

import enum

from admf._core import Event
from admf.events import Kind


class LiveCode(enum.IntEnum):
    """The codes. Part of the log format."""

    RECONCILING = 1
    """The execution side is (re)connecting: new exposure waits until ``RECONCILED``."""
    RECONCILED = 2
    """Orders, fills and positions were compared with the venue (payload: what was found)."""
    DATA_CONNECTED = 3
    DATA_DISCONNECTED = 4
    POLLING = 5
    """The order-update stream failed; order states are polled instead."""
    STREAMING = 6
    """The order-update stream is back."""
    PAUSE = 10
    """Control: no new entries (cancels and reducing orders pass)."""
    RESUME = 11
    FLATTEN = 12
    """Control: cancel every open order and close every position."""
    STOP = 13
    """The session is stopping (``aux`` 1: cancel open orders, 0: leave them)."""
    DUPLICATE_FILL = 20
    OVERFILL = 21
    UNKNOWN_ORDER = 22
    MALFORMED = 23
    CONFLATED = 24
    """Market data was conflated under load (``qty``: how many messages so far)."""
    AMBIGUOUS = 25
    """An order request's outcome is unknown (timeout, disconnect, 5xx, 429): it stays in
    flight and is resolved by its client order id."""
    RESOLVED = 26
    """An ambiguous request was resolved (payload: how)."""
    VENUE_ERROR = 27
    RESUMED = 30
    """The session was resumed from its log after a stop or a crash."""


K_CUSTOM = int(Kind.CUSTOM)


def live_event(code: LiveCode, ts: int, *, aux: int = 0, qty: int = 0) -> Event:
    """A live record (``CUSTOM``, ``order_id`` = code) stamped ``ts``."""
    return Event(K_CUSTOM, ts, order_id=int(code), aux=aux, qty=qty)
