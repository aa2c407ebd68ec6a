"""Fault injection: switches that make the exchange misbehave on purpose, for tests of
clients. All are off by default; each is set at start (``--fault NAME=VALUE``) or at run
time (``PATCH /admin/faults`` on loopback). Counters count down as faults are injected, so a
test asks for exactly as many as it wants; every injected fault is recorded in the
exchange's log (a ``CUSTOM`` event with ``{"fault": name, ...}``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from admf.exchange.config import ExchangeConfigError

HTTP_FAULT_STATUSES = (429, 500, 502, 503, 504)


@dataclasses.dataclass
class Faults:
    """The switches (see the module docstring)."""

    drop_connection: int = 0
    """The next N stream frames close their connection abruptly instead of being sent."""
    ack_delay_ms: float = 0.0
    """Delay before an order request (submit, replace, cancel) is handled and answered."""
    duplicate_trade_updates: int = 0
    """The next N trade_updates messages are sent twice."""
    reorder_trade_updates: int = 0
    """The next N trade_updates messages are held back and sent after the one after them."""
    http_status: int = 0
    """With ``http_count``: the status (429, 500, 502, 503, 504) of refused requests."""
    http_count: int = 0
    """The next N requests to ``/v2`` are refused with ``http_status`` before being handled."""
    accept_then_504: int = 0
    """The next N order submissions or replaces are accepted, then answered 504 Gateway
    Timeout."""
    malformed_frames: int = 0
    """The next N stream frames are sent as bytes that are not valid JSON or MessagePack."""

    def update(self, values: Any) -> None:
        """Sets switches from a mapping; refuses unknown names and wrong types (nothing is
        changed then)."""
        if not isinstance(values, dict):
            raise ExchangeConfigError("faults: expected a JSON object of switches")
        fields = {f.name: f for f in dataclasses.fields(self)}
        checked: dict[str, Any] = {}
        for name, value in values.items():
            if name not in fields:
                raise ExchangeConfigError(
                    f"faults: unknown switch {name!r}; switches: {', '.join(fields)}"
                )
            want = float if name == "ack_delay_ms" else int
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ExchangeConfigError(f"faults: {name} must be a number, got {value!r}")
            if value < 0 or (want is int and value != int(value)):
                raise ExchangeConfigError(f"faults: {name} must be a non-negative {want.__name__}")
            if name == "http_status" and value and value not in HTTP_FAULT_STATUSES:
                raise ExchangeConfigError(
                    f"faults: http_status must be one of {HTTP_FAULT_STATUSES}, got {value}"
                )
            checked[name] = want(value)
        for name, value in checked.items():
            setattr(self, name, value)

    def take(self, name: str) -> bool:
        """Uses one of counter ``name``; False when it is at zero."""
        left = getattr(self, name)
        if left <= 0:
            return False
        setattr(self, name, left - 1)
        return True

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_fault_args(items: list[str] | None) -> dict[str, float]:
    """``NAME=VALUE`` command-line items as a mapping for ``Faults.update``."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value) if "." in value else int(value)
        except ValueError:
            raise ExchangeConfigError(f"--fault takes NAME=NUMBER, got {item!r}") from None
        if not sep:
            raise ExchangeConfigError(f"--fault takes NAME=NUMBER, got {item!r}")
    return out
